// Command weft-control is weft's coordination server: official Tailscale
// clients join it with `tailscale up --login-server=URL`. With no
// subcommand (or "serve") it runs the server; every other subcommand is an
// admin command that talks to the running server (see control/admincli).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"weft.dev/weft/control/admincli"
	"weft.dev/weft/control/server"
)

func main() {
	// The server's working set is thousands of long-lived connections plus
	// bursts of short-lived map encodings. Halving the GC headroom costs
	// little CPU and cut RSS by a fifth at 1,000 nodes (bench/control-scale:
	// 135 → 110 MB). GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "version" {
		fmt.Fprintln(stdout, "weft-control", version())
		return 0
	}
	if admincli.IsCommand(args) {
		return admincli.Run(ctx, args, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	cfg, logger, err := parseServeFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "weft-control:", err)
		return 2
	}
	cfg.Logger = logger
	srv, err := server.New(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "weft-control:", err)
		return 1
	}
	defer srv.Close()
	if err := srv.Serve(ctx); err != nil {
		fmt.Fprintln(stderr, "weft-control:", err)
		return 1
	}
	return 0
}

// stringList is a repeatable, comma-separable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

func parseServeFlags(args []string, stderr io.Writer) (server.Config, *slog.Logger, error) {
	var cfg server.Config
	fs := flag.NewFlagSet("weft-control", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "optional config file: one `flag value` per line, same names as the flags, # comments")
	fs.StringVar(&cfg.Listen, "listen", "", `public listen address (default ":8080", ":443" with --acme-hostname)`)
	fs.StringVar(&cfg.ServerURL, "server-url", "", "URL clients use to reach this server (default derived from --listen)")
	fs.StringVar(&cfg.StateDir, "state-dir", "weft-state", "directory for the database, admin socket and ACME cache")
	fs.StringVar(&cfg.DERPMapFile, "derp-map", "", "DERP map JSON file (wire DERPMap shape); its regions are added to the embedded relay's region 900")
	noDERP := fs.Bool("disable-derp", false, "do not run the embedded DERP relay and STUN server")
	fs.StringVar(&cfg.STUNListen, "stun-listen", ":3478", `UDP address of the embedded STUN server ("none" to disable)`)
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (reloaded when it changes)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "TLS key file")
	fs.StringVar(&cfg.ACMEHostname, "acme-hostname", "", "get certificates automatically (ACME) for this host name")
	p4 := fs.String("ipv4-prefix", "100.64.0.0/10", `IPv4 address pool ("" or "none" to disable)`)
	p6 := fs.String("ipv6-prefix", "fd7a:115c:a1e0::/48", `IPv6 address pool ("" or "none" to disable)`)
	fs.StringVar(&cfg.BaseDomain, "base-domain", "weft.internal", "MagicDNS base domain")
	magic := fs.Bool("magic-dns", true, "enable MagicDNS")
	var ns, search stringList
	fs.Var(&ns, "nameserver", "global DNS resolver pushed to nodes (repeatable)")
	fs.Var(&search, "search-domain", "extra DNS search domain (repeatable)")
	fs.DurationVar(&cfg.NodeKeyExpiry, "node-key-expiry", 0, "lifetime of node keys; clients re-authenticate after it (default 0: never)")
	fs.DurationVar(&cfg.EphemeralTimeout, "ephemeral-timeout", 0, "delete ephemeral nodes offline this long (default 30m)")
	fs.StringVar(&cfg.PolicyFile, "policy-file", "", "HuJSON tailnet policy `FILE`, authoritative: reloaded when it changes, and `policy set` is refused (default: the policy stored by `weft-control policy set`)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: weft-control [serve] [flags]\n       weft-control users|keys|nodes|routes|dns|policy|apikeys ... (admin; --help for each)\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	if fs.NArg() > 0 {
		return cfg, nil, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if *configFile != "" {
		if err := applyConfigFile(fs, *configFile); err != nil {
			return cfg, nil, err
		}
	}
	var err error
	if cfg.Prefix4, err = parsePrefix(*p4, "--ipv4-prefix"); err != nil {
		return cfg, nil, err
	}
	if cfg.Prefix6, err = parsePrefix(*p6, "--ipv6-prefix"); err != nil {
		return cfg, nil, err
	}
	if !cfg.Prefix4.IsValid() && !cfg.Prefix6.IsValid() {
		return cfg, nil, errors.New("--ipv4-prefix and --ipv6-prefix cannot both be disabled")
	}
	cfg.DisableMagicDNS = !*magic
	cfg.DisableDERP = *noDERP
	cfg.Nameservers, cfg.SearchDomains = ns, search
	logger, err := newLogger(*level, *format, stderr)
	return cfg, logger, err
}

func parsePrefix(s, flagName string) (netip.Prefix, error) {
	if s == "" || s == "none" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%s %q: %w", flagName, s, err)
	}
	return p.Masked(), nil
}

// applyConfigFile sets every flag named in the file that was not given on
// the command line (the command line wins).
func applyConfigFile(fs *flag.FlagSet, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, _ := strings.Cut(line, " ")
		name = strings.TrimSuffix(strings.TrimLeft(name, "-"), ":")
		if n, v, ok := strings.Cut(name, "="); ok {
			name, value = n, v
		}
		value = strings.Trim(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(value), "=")), `"`)
		f := fs.Lookup(name)
		if f == nil || name == "config" {
			return fmt.Errorf("%s:%d: unknown setting %q", path, i+1, name)
		}
		if given[name] {
			continue
		}
		if err := fs.Set(name, value); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", path, i+1, name, err)
		}
	}
	return nil
}

func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}
