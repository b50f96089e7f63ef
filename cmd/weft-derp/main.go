package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"weft.dev/weft/relay"
	"weft.dev/weft/wire/key"
)

// flags mirrors derper's flag set (cmd/derper/derper.go upstream).
type flags struct {
	addr, certMode, certDir, hostname, configPath      string
	meshPSKFile, meshWith, verifyClientURL, socketPath string
	verifyControlURL, verifyControlKeyFile             string
	verifyControlFailOpen                              bool
	debugListen                                        string
	bootstrapDNS, rateConfig                           string
	httpPort, stunPort                                 int
	runSTUN, runDERP, dev, verifyClients, failOpen     bool
	acceptLimit                                        float64
	acceptBurst                                        int
	writeTimeout                                       time.Duration
	version                                            bool
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("weft-derp", flag.ContinueOnError)
	fs.StringVar(&f.addr, "a", ":443", `listen address ":port" or "ip:port"; serves HTTPS if the port is 443 or -certmode=manual, else HTTP`)
	fs.BoolVar(&f.dev, "dev", false, "localhost development mode: plain HTTP on :3340, STUN on 3478, throw-away key")
	fs.IntVar(&f.httpPort, "http-port", 80, "plain HTTP port used alongside TLS (ACME, /generate_204, redirects); -1 disables")
	fs.IntVar(&f.stunPort, "stun-port", 3478, "UDP port of the STUN server")
	fs.BoolVar(&f.runSTUN, "stun", true, "run the STUN server")
	fs.BoolVar(&f.runDERP, "derp", true, "run the DERP relay (false: STUN and bootstrap DNS only)")
	fs.StringVar(&f.configPath, "c", "", `config file {"PrivateKey":"privkey:..."}; created with a new key if missing`)
	fs.StringVar(&f.certMode, "certmode", "letsencrypt", "certificate source: letsencrypt or manual")
	fs.StringVar(&f.certDir, "certdir", defaultCertDir(), "certificate cache (letsencrypt) or <hostname>.crt/.key directory (manual)")
	fs.StringVar(&f.hostname, "hostname", "", "TLS host name; may be an IP address with -certmode=manual")
	fs.StringVar(&f.meshPSKFile, "mesh-psk-file", defaultMeshPSKFile(), "file holding the 64-hex-digit mesh key")
	fs.StringVar(&f.meshWith, "mesh-with", "", "comma-separated mesh peers: host, host/dialhost or a full URL")
	fs.BoolVar(&f.verifyClients, "verify-clients", false, "admit only nodes known to the local node daemon (LocalAPI whois)")
	fs.StringVar(&f.socketPath, "socket", "/var/run/weft/weftd.sock", "LocalAPI socket for -verify-clients")
	fs.StringVar(&f.verifyClientURL, "verify-client-url", "", "admission controller URL (POST {NodePublic,Source} → {Allow})")
	fs.BoolVar(&f.failOpen, "verify-client-url-fail-open", true, "admit clients when the admission controller is unreachable")
	fs.StringVar(&f.verifyControlURL, "verify-control-url", "", "admit only node keys registered (and not expired) in this weft-control, e.g. https://ctl.example.com")
	fs.StringVar(&f.verifyControlKeyFile, "verify-control-api-key-file", "", "file holding the weft-control API key for -verify-control-url (default: $WEFT_API_KEY)")
	fs.BoolVar(&f.verifyControlFailOpen, "verify-control-fail-open", false, "admit clients when weft-control cannot be reached")
	fs.Float64Var(&f.acceptLimit, "accept-connection-limit", math.Inf(1), "new TLS connections per second; excess ones are closed")
	fs.IntVar(&f.acceptBurst, "accept-connection-burst", math.MaxInt, "burst for -accept-connection-limit")
	fs.StringVar(&f.bootstrapDNS, "bootstrap-dns-names", "", "comma-separated names published at /bootstrap-dns")
	fs.StringVar(&f.rateConfig, "rate-config", "", `per-client receive rate JSON {"PerClientRateLimitBytesPerSec":N,"PerClientRateBurstBytes":M}`)
	fs.DurationVar(&f.writeTimeout, "tcp-write-timeout", 2*time.Second, "write deadline for non-mesh clients; 0 disables")
	fs.StringVar(&f.debugListen, "debug-listen", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; keep it private")
	fs.BoolVar(&f.version, "version", false, "print version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if f.dev {
		f.addr = ":3340"
	}
	return f, nil
}

func defaultCertDir() string {
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "weft", "derper-certs")
	}
	return "derper-certs"
}

func defaultMeshPSKFile() string {
	for _, p := range []string{"/home/derp/keys/derp-mesh.key", filepath.Join(os.Getenv("HOME"), "keys", "derp-mesh.key")} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

func main() {
	f, err := parseFlags(os.Args[1:])
	if err != nil {
		os.Exit(2)
	}
	if f.version {
		fmt.Println("weft-derp (DERP protocol version 2)")
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, f, log); err != nil {
		log.Error("weft-derp", "err", err)
		os.Exit(1)
	}
}

// options turns flags into relay.Options.
func options(f *flags, log *slog.Logger) (relay.Options, error) {
	o := relay.Options{Logger: log, WriteTimeout: f.writeTimeout}
	if f.writeTimeout == 0 {
		o.WriteTimeout = -1
	}
	var err error
	switch {
	case f.configPath != "":
		o.PrivateKey, err = loadOrCreateKey(f.configPath)
		if err != nil {
			return o, err
		}
	case f.dev:
		o.PrivateKey = key.NewNode()
	default:
		return o, errors.New("-c <config file> is required (or use -dev)")
	}
	switch {
	case f.meshPSKFile != "":
		b, err := os.ReadFile(f.meshPSKFile)
		if err != nil {
			return o, fmt.Errorf("read mesh key: %w", err)
		}
		o.MeshKey = strings.TrimSpace(string(b))
	case f.dev:
		o.MeshKey = firstNonEmpty(os.Getenv("WEFT_DERPER_MESH_KEY"), os.Getenv("TAILSCALE_DERPER_MESH_KEY"))
	}
	if f.meshWith != "" {
		o.MeshWith = strings.Split(f.meshWith, ",")
	}
	var verifiers []relay.VerifyFunc
	if f.verifyClients {
		verifiers = append(verifiers, relay.VerifyLocalAPI(f.socketPath))
	}
	if f.verifyClientURL != "" {
		verifiers = append(verifiers, relay.VerifyClientURL(f.verifyClientURL, f.failOpen, nil))
	}
	if f.verifyControlURL != "" {
		apiKey := os.Getenv("WEFT_API_KEY")
		if f.verifyControlKeyFile != "" {
			b, err := os.ReadFile(f.verifyControlKeyFile)
			if err != nil {
				return o, fmt.Errorf("read API key: %w", err)
			}
			apiKey = strings.TrimSpace(string(b))
		}
		v, err := relay.VerifyControl(f.verifyControlURL, apiKey, f.verifyControlFailOpen, nil)
		if err != nil {
			return o, fmt.Errorf("-verify-control-url: %w", err)
		}
		verifiers = append(verifiers, v)
	}
	if len(verifiers) > 0 {
		o.Verify = relay.VerifyAll(verifiers...)
	}
	if f.bootstrapDNS != "" {
		o.BootstrapDNSNames = strings.Split(f.bootstrapDNS, ",")
	}
	if f.rateConfig != "" {
		b, err := os.ReadFile(f.rateConfig)
		if err != nil {
			return o, fmt.Errorf("read rate config: %w", err)
		}
		var rc struct{ PerClientRateLimitBytesPerSec, PerClientRateBurstBytes int }
		if err := json.Unmarshal(b, &rc); err != nil {
			return o, fmt.Errorf("rate config %s: %w", f.rateConfig, err)
		}
		o.RateLimitBytesPerSec, o.RateLimitBurst = float64(rc.PerClientRateLimitBytesPerSec), rc.PerClientRateBurstBytes
	}
	return o, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// loadOrCreateKey reads derper's JSON config, creating it atomically with a
// new key (mode 0600) when missing.
func loadOrCreateKey(path string) (key.NodePrivate, error) {
	var cfg struct{ PrivateKey key.NodePrivate }
	b, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(b, &cfg); err != nil {
			return key.NodePrivate{}, fmt.Errorf("config %s: %w", path, err)
		}
		if cfg.PrivateKey.IsZero() {
			return key.NodePrivate{}, fmt.Errorf("config %s: no PrivateKey", path)
		}
		return cfg.PrivateKey, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return key.NodePrivate{}, err
	}
	cfg.PrivateKey = key.NewNode()
	b, _ = json.MarshalIndent(cfg, "", "\t")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return key.NodePrivate{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".weft-derp-key-*")
	if err != nil {
		return key.NodePrivate{}, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return key.NodePrivate{}, err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return key.NodePrivate{}, err
	}
	if err := tmp.Close(); err != nil {
		return key.NodePrivate{}, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return key.NodePrivate{}, fmt.Errorf("write config %s: %w", path, err)
	}
	return cfg.PrivateKey, nil
}

// serveTLS reports whether the listen address gets TLS (derper's rule).
func serveTLS(f *flags) bool {
	if f.dev {
		return false
	}
	_, port, _ := net.SplitHostPort(f.addr)
	return port == "443" || port == "https" || f.certMode == "manual"
}

func hostPort(addr string, port int) string {
	host, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func run(ctx context.Context, f *flags, log *slog.Logger) error {
	opts, err := options(f, log)
	if err != nil {
		return err
	}
	srv, err := relay.New(opts)
	if err != nil {
		return err
	}
	defer srv.Close()

	errc := make(chan error, 4)
	if f.runSTUN {
		pc, err := net.ListenPacket("udp", hostPort(f.addr, f.stunPort))
		if err != nil {
			return fmt.Errorf("STUN listen: %w", err)
		}
		defer pc.Close()
		log.Info("STUN server listening", "addr", pc.LocalAddr())
		go func() { errc <- srv.ServeSTUN(ctx, pc) }()
	}

	if f.debugListen != "" {
		dl, err := net.Listen("tcp", f.debugListen)
		if err != nil {
			return fmt.Errorf("debug listen: %w", err)
		}
		ds := &http.Server{Handler: debugMux(), ReadHeaderTimeout: 10 * time.Second}
		defer ds.Close()
		go ds.Serve(dl)
	}

	handler := srv.Handler()
	if !f.runDERP {
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		mux.HandleFunc("/derp", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "derp server disabled", http.StatusNotFound)
		})
		handler = mux
	}
	hs := &http.Server{Handler: handler, ReadHeaderTimeout: 30 * time.Second}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	var port80 *http.Server
	if serveTLS(f) {
		tc, err := tlsSetup(f, srv, log)
		if err != nil {
			ln.Close()
			return err
		}
		hs.TLSConfig = tc.config
		ln = relay.LimitListener(ln, f.acceptLimit, f.acceptBurst)
		if f.httpPort >= 0 {
			port80 = &http.Server{Handler: tc.port80(f.hostname), ReadHeaderTimeout: 30 * time.Second, WriteTimeout: 5 * time.Minute}
			l80, err := net.Listen("tcp", hostPort(f.addr, f.httpPort))
			if err != nil {
				ln.Close()
				return fmt.Errorf("http port: %w", err)
			}
			go func() { errc <- port80.Serve(l80) }()
		}
		log.Info("weft-derp serving", "addr", ln.Addr(), "tls", true, "key", srv.PublicKey())
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		log.Info("weft-derp serving", "addr", ln.Addr(), "tls", false, "key", srv.PublicKey())
		go func() { errc <- hs.Serve(ln) }()
	}

	select {
	case <-ctx.Done():
		err = nil
	case err = <-errc:
	}
	// Restarting frames first (hijacked connections are invisible to
	// http.Server.Shutdown), then the listeners.
	srv.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(sctx)
	if port80 != nil {
		port80.Shutdown(sctx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// debugMux serves Go's profiler, like derper's loopback-only /debug/pprof.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
