// Command weftd is weft's node daemon (the role of tailscaled): it keeps
// the node logged in to its control server, runs the data plane and
// serves the LocalAPI that the weft CLI talks to. Its flags are
// tailscaled's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"weft.dev/weft/node/daemon"
)

func main() {
	shareCPUs(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr, os.Getuid(), os.Getenv))
}

// shareCPUs runs Go code on half the CPUs (at least one) unless the
// GOMAXPROCS environment variable says otherwise. weftd shares the machine
// with the programs whose traffic it carries and with the kernel's network
// stack; with a P per CPU, every hand-off between wireguard-go's pipeline
// stages wakes an idle P whose thread spins on a CPU those need. Measured
// on 2 CPUs (bench/dataplane -rounds 3, weftd pair + iperf3, one P against
// two in the same rounds): 1.30x the throughput with one TCP stream and
// 1.22x with four, 0.83x and 0.75x the CPU per GB, 0.61x the ICMP RTT.
// A machine that only routes (weftd is its one busy process) can set
// GOMAXPROCS to its CPU count.
func shareCPUs(getenv func(string) string) {
	if getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)/2))
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func run(ctx context.Context, args []string, stderr io.Writer, uid int, getenv func(string) string) int {
	fs := flag.NewFlagSet("weftd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		statePath = fs.String("state", "", `absolute path of the state file; use 'mem:' to not store state and register as an ephemeral node; 'kube:<secret>' is reserved for Kubernetes secrets (not yet supported). Default: <statedir>/weftd.state`)
		stateDir  = fs.String("statedir", "", "path to directory for storage of config state (default "+daemon.DefaultStateDir(uid, getenv)+")")
		socket    = fs.String("socket", daemon.DefaultSocket(uid, getenv), "path of the service unix socket")
		port      = fs.Int("port", daemon.DefaultPort, "UDP port to listen on for WireGuard and peer-to-peer traffic; 0 means automatically select")
		tun       = fs.String("tun", "weft0", `tunnel interface name; use "userspace-networking" (beta) to not use TUN`)
		socks5    = fs.String("socks5-server", "", `optional [ip]:port to run a SOCKS5 server (e.g. "localhost:1080")`)
		httpProxy = fs.String("outbound-http-proxy-listen", "", `optional [ip]:port to run an outbound HTTP proxy (e.g. "localhost:8080")`)
		verbose   = fs.Int("verbose", 0, "log verbosity level; 0 is default, 1 or higher are increasingly verbose")
		debugAddr = fs.String("debug", "", "listen address ([ip]:port) of optional debug server")
		cleanup   = fs.Bool("cleanup", false, "clean up system state and exit")
		showVer   = fs.Bool("version", false, "print version information and exit")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "weftd: unexpected argument %q; weftd takes only flags (see weftd --help)\n", fs.Arg(0))
		return 2
	}
	if *showVer {
		fmt.Fprintln(os.Stdout, version())
		return 0
	}
	level := slog.LevelInfo
	if *verbose > 0 {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if *cleanup {
		return doCleanup(*socket, stderr)
	}
	if *tun != daemon.UserspaceNetworking && uid != 0 {
		fmt.Fprintf(stderr, "weftd: --tun=%s needs root to create a TUN device; run weftd as root, or pass --tun=userspace-networking to run as a normal user\n", *tun)
		return 1
	}
	if *statePath == "" && *stateDir == "" {
		*stateDir = daemon.DefaultStateDir(uid, getenv)
	}
	d, err := daemon.New(ctx, daemon.Config{
		State: *statePath, StateDir: *stateDir, Socket: *socket, Port: *port, Tun: *tun,
		Socks5: *socks5, HTTPProxy: *httpProxy, Debug: *debugAddr, Version: version(), Logger: logger,
		Getenv: getenv,
	})
	if err != nil {
		fmt.Fprintln(stderr, "weftd:", err)
		return 1
	}
	if err := d.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "weftd:", err)
		return 1
	}
	return 0
}

// doCleanup removes what a crashed weftd may leave behind. weftd installs
// no firewall rules, and its TUN device (with its routes) disappears with
// the process, so only a stale socket remains to remove.
func doCleanup(socket string, stderr io.Writer) int {
	if c, err := net.DialTimeout("unix", socket, time.Second); err == nil {
		c.Close()
		fmt.Fprintf(stderr, "weftd: --cleanup: a weftd is running on %s; stop it first\n", socket)
		return 1
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(stderr, "weftd: --cleanup:", err)
		return 1
	}
	return 0
}
