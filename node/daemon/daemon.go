package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"

	"weft.dev/weft/node/controlclient"
	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/ipn/ipnlocal"
	"weft.dev/weft/node/localapi"
	"weft.dev/weft/node/state"
	"weft.dev/weft/wire/ctrl"
)

// DefaultPort is --port's default, as tailscaled's.
const DefaultPort = 41641

// UserspaceNetworking is the --tun value for netstack mode.
const UserspaceNetworking = "userspace-networking"

// EngineConfig is what an engine constructor gets.
type EngineConfig struct {
	Port   int
	Tun    string
	Logger *slog.Logger
	// DERPOverHTTP is TS_DEBUG_USE_DERP_HTTP=1: dial DERP without TLS.
	DERPOverHTTP bool
}

// Config is weftd's configuration (tailscaled's flags).
type Config struct {
	State     string // --state: file path, "mem:", later "kube:<secret>"
	StateDir  string // --statedir
	Socket    string // --socket
	Port      int    // --port
	Tun       string // --tun
	Socks5    string // --socks5-server
	HTTPProxy string // --outbound-http-proxy-listen
	Debug     string // --debug: listen address for /debug/
	Version   string

	Logger *slog.Logger
	// NewEngine builds the data plane; nil builds the real one
	// (node/wgengine), or engine.Fake when FakeEngine is set.
	NewEngine func(EngineConfig) (engine.Engine, error)
	// FakeEngine runs the control plane alone on engine.Fake (tests).
	FakeEngine bool
	// Getenv reads the environment (TS_DEBUG_USE_DERP_HTTP); nil reads
	// nothing.
	Getenv func(string) string
	// PeerCreds and LookupUID are LocalAPI seams (tests play other users).
	PeerCreds localapi.PeerCredsFunc
	LookupUID func(string) (int, error)
	// DaemonUID overrides os.Getuid() for the permission check.
	DaemonUID *int
	// ControlOptions edits control-client options (tests).
	ControlOptions func(*controlclient.Options)
	// Hostname overrides os.Hostname.
	Hostname string
}

// Daemon is a running weftd.
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	Backend *ipnlocal.Backend
	eng     engine.Engine
	ln      net.Listener
	handler http.Handler
	reg     *prometheus.Registry
	debugLn net.Listener
	proxies proxies
}

// New opens the state, builds the engine and backend and listens on the
// socket. A corrupt state file is an error and is left untouched.
func New(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultPort
	}
	if cfg.Socket == "" {
		return nil, errors.New("no --socket path")
	}
	log := cfg.Logger
	backend, err := state.OpenBackend(cfg.State, cfg.StateDir)
	if err != nil {
		return nil, err
	}
	st, err := state.Open(ctx, backend)
	if err != nil {
		return nil, err
	}
	if cfg.Getenv == nil {
		cfg.Getenv = func(string) string { return "" }
	}
	newEngine := cfg.NewEngine
	switch {
	case newEngine != nil:
	case cfg.FakeEngine:
		newEngine = func(EngineConfig) (engine.Engine, error) {
			log.Warn("running the control plane only (engine.Fake); ping and netcheck will fail")
			return engine.NewFake(engine.LocalState{}), nil
		}
	default:
		newEngine = newWGEngine
	}
	derpHTTP := cfg.Getenv(EnvDERPOverHTTP) == "1" || cfg.Getenv(EnvDERPOverHTTP) == "true"
	if derpHTTP {
		log.Warn(EnvDERPOverHTTP + " is set: DERP is dialed over plain HTTP")
	}
	var px proxies
	if err := px.listen(cfg); err != nil {
		return nil, err
	}
	eng, err := newEngine(EngineConfig{Port: cfg.Port, Tun: cfg.Tun, Logger: log, DERPOverHTTP: derpHTTP})
	if err != nil {
		px.close()
		return nil, fmt.Errorf("data plane: %w", err)
	}
	b, err := ipnlocal.New(ipnlocal.Options{
		Store:          st,
		Engine:         eng,
		Logger:         log,
		Version:        cfg.Version,
		TUN:            cfg.Tun != UserspaceNetworking,
		Hostinfo:       hostinfoFunc(cfg),
		Ephemeral:      strings.HasPrefix(cfg.State, "mem:"),
		ControlOptions: cfg.ControlOptions,
	})
	if err != nil {
		px.close()
		eng.Close()
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, Backend: b, eng: eng, reg: prometheus.NewRegistry(), proxies: px}
	d.registerMetrics()
	uid := os.Getuid()
	if cfg.DaemonUID != nil {
		uid = *cfg.DaemonUID
	}
	d.handler = localapi.NewHandler(localapi.Config{
		Backend: b, Logger: log, DaemonUID: uid, LookupUID: cfg.LookupUID,
		Metrics: promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}),
	})
	ln, err := localapi.Listen(cfg.Socket)
	if err != nil {
		px.close()
		eng.Close()
		return nil, err
	}
	d.ln = ln
	if cfg.Debug != "" {
		if d.debugLn, err = net.Listen("tcp", cfg.Debug); err != nil {
			ln.Close()
			px.close()
			eng.Close()
			return nil, fmt.Errorf("--debug=%s: %w", cfg.Debug, err)
		}
	}
	return d, nil
}

// Handler returns the LocalAPI handler (for tests that skip the socket).
func (d *Daemon) Handler() http.Handler { return d.handler }

// Run serves until ctx ends, then shuts everything down.
func (d *Daemon) Run(ctx context.Context) error {
	d.Backend.Init()
	d.log.Info("weftd running", "socket", d.cfg.Socket, "version", d.cfg.Version)
	if d.debugLn != nil {
		srv := &http.Server{Handler: d.debugMux(), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(d.debugLn)
		defer srv.Close()
	}
	pctx, stopProxies := context.WithCancel(ctx)
	waitProxies := d.proxies.serve(pctx, d.proxyDialer(), d.log)
	err := localapi.Serve(ctx, d.ln, d.handler, d.cfg.PeerCreds, d.log)
	stopProxies()
	waitProxies()
	d.Backend.Shutdown()
	d.eng.Close()
	os.Remove(d.cfg.Socket)
	return err
}

func (d *Daemon) debugMux() http.Handler {
	m := http.NewServeMux()
	m.Handle("/debug/metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	m.HandleFunc("/debug/goroutines", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		buf := make([]byte, 1<<20)
		w.Write(buf[:runtime.Stack(buf, true)])
	})
	m.HandleFunc("/debug/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "weftd debug: /debug/metrics /debug/goroutines /debug/pprof/")
	})
	return m
}

func (d *Daemon) registerMetrics() {
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b := d.Backend
	d.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "weftd_backend_state", Help: "Backend state (0 NoState … 6 Running).",
	}, func() float64 { return float64(b.State()) }))
	d.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "weftd_peers", Help: "Peers in the current netmap.",
	}, func() float64 {
		if nm := b.NetMap(); nm != nil {
			return float64(len(nm.Peers))
		}
		return 0
	}))
	counter := func(name, help string, get func(*controlclient.Stats) int64) {
		d.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			if s := b.ControlStats(); s != nil {
				return float64(get(s))
			}
			return 0
		}))
	}
	counter("weftd_control_register_requests_total", "Register requests sent by the current control client.", func(s *controlclient.Stats) int64 { return s.Registers.Load() })
	counter("weftd_control_map_streams_total", "Map long polls opened by the current control client.", func(s *controlclient.Stats) int64 { return s.MapStreams.Load() })
	counter("weftd_control_map_frames_total", "Map frames received by the current control client.", func(s *controlclient.Stats) int64 { return s.MapFrames.Load() })
	counter("weftd_control_lite_updates_total", "Lite map updates sent by the current control client.", func(s *controlclient.Stats) int64 { return s.LiteUpdates.Load() })
	counter("weftd_control_errors_total", "Control errors seen by the current control client.", func(s *controlclient.Stats) int64 { return s.Errors.Load() })
}

// hostinfoFunc returns the host's base Hostinfo.
func hostinfoFunc(cfg Config) func() ctrl.Hostinfo {
	return func() ctrl.Hostinfo {
		host := cfg.Hostname
		if host == "" {
			host, _ = os.Hostname()
		}
		hi := ctrl.Hostinfo{
			IPNVersion: cfg.Version,
			OS:         runtime.GOOS,
			Hostname:   host,
			GoArch:     runtime.GOARCH,
			GoVersion:  runtime.Version(),
		}
		var u unix.Utsname
		if unix.Uname(&u) == nil {
			hi.OSVersion = unix.ByteSliceToString(u.Release[:])
			hi.Machine = unix.ByteSliceToString(u.Machine[:])
		}
		return hi
	}
}

// DefaultSocket returns the socket path for a uid: /var/run/weft for root,
// $XDG_RUNTIME_DIR (or the state dir) for other users.
func DefaultSocket(uid int, getenv func(string) string) string {
	if uid == 0 {
		return localapi.DefaultSocket
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "weft", "weftd.sock")
	}
	return filepath.Join(DefaultStateDir(uid, getenv), "weftd.sock")
}

// DefaultStateDir returns /var/lib/weft for root, else
// $XDG_STATE_HOME/weft or ~/.local/state/weft.
func DefaultStateDir(uid int, getenv func(string) string) string {
	if uid == 0 {
		return "/var/lib/weft"
	}
	if d := getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "weft")
	}
	return filepath.Join(getenv("HOME"), ".local", "state", "weft")
}
