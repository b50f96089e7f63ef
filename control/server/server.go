package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/crypto/acme/autocert"

	"weft.dev/weft/control/admin"
	"weft.dev/weft/control/api"
	"weft.dev/weft/control/mapper"
	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/internal/clock"
	"weft.dev/weft/relay"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// Config is weft-control's configuration; zero values take the defaults
// documented on each field.
type Config struct {
	// Listen is the public listen address (default ":8080"; ":443" with ACME).
	Listen string
	// ServerURL is the URL clients use (default http://<listen address>).
	ServerURL string
	// StateDir holds the SQLite database, the admin socket and the ACME
	// cache (default "./weft-state").
	StateDir string
	// DERPMapFile is a JSON file in the wire DERPMap shape. Its regions are
	// added to the embedded relay's region (a region with the same ID, 900,
	// replaces it).
	DERPMapFile string
	// DisableDERP turns the embedded DERP relay and STUN server off; the
	// DERP map then comes from DERPMapFile alone.
	DisableDERP bool
	// STUNListen is the embedded STUN server's UDP address (default
	// ":3478"; "none" disables STUN but keeps the relay).
	STUNListen string
	// TLSCert and TLSKey serve TLS from files, reloaded when they change.
	TLSCert, TLSKey string
	// ACMEHostname enables automatic certificates for that name.
	ACMEHostname string
	// Prefix4 and Prefix6 are the address pools (defaults 100.64.0.0/10 and
	// fd7a:115c:a1e0::/48).
	Prefix4, Prefix6 netip.Prefix
	// BaseDomain is the MagicDNS domain (default "weft.internal").
	BaseDomain string
	// DisableMagicDNS turns MagicDNS off.
	DisableMagicDNS bool
	// Nameservers are global resolvers pushed to nodes (default none:
	// nodes keep their own DNS).
	Nameservers []string
	// SearchDomains are extra search domains.
	SearchDomains []string
	// NodeKeyExpiry is the lifetime of new node keys (default 0: never).
	NodeKeyExpiry time.Duration
	// EphemeralTimeout is how long an ephemeral node may stay offline
	// before it is deleted (default 30 min).
	EphemeralTimeout time.Duration
	// PolicyFile is a HuJSON policy file that is authoritative for the
	// tailnet policy: loaded at start, re-read when it changes (polled
	// every second). Without it the policy lives in the store and is set
	// with `weft-control policy set`.
	PolicyFile string

	Logger *slog.Logger
	Clock  clock.Clock
	// Store overrides the SQLite store (tests use store.NewMemory()).
	Store store.Store
}

const noiseKeySetting = "noise_private_key"

// Server is a running weft-control.
type Server struct {
	cfg      Config
	log      *slog.Logger
	store    store.Store
	state    *state.State
	batcher  *mapper.Batcher
	api      *api.Server
	registry *prometheus.Registry
	derpMap  *ctrl.DERPMap
	handler  http.Handler
	adminH   http.Handler
	relay    *relay.Server // nil when DisableDERP
	polFile  *policyFile   // nil without --policy-file

	closeOnce sync.Once
}

// New builds a Server; it opens (and migrates) the store.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, registry: prometheus.NewRegistry()}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	s.derpMap = &ctrl.DERPMap{Regions: map[int]*ctrl.DERPRegion{}}
	if !cfg.DisableDERP {
		r, err := embeddedRegion(cfg.ServerURL, cfg.STUNListen)
		if err != nil {
			return nil, err
		}
		s.derpMap.Regions[r.RegionID] = r
	}
	if cfg.DERPMapFile != "" {
		m, err := loadDERPMap(cfg.DERPMapFile)
		if err != nil {
			return nil, err
		}
		for id, r := range m.Regions {
			s.derpMap.Regions[id] = r
		}
	}
	if len(s.derpMap.Regions) == 0 {
		s.log.Warn("no DERP relay: the embedded one is off and --derp-map is empty; clients cannot reach Running")
	}

	s.store = cfg.Store
	if s.store == nil {
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		db, err := store.OpenSQLite(ctx, filepath.Join(cfg.StateDir, "weft-control.db"), cfg.Logger)
		if err != nil {
			return nil, err
		}
		s.store = db
	}
	noiseKey, err := loadOrCreateNoiseKey(ctx, s.store)
	if err != nil {
		s.store.Close()
		return nil, err
	}

	b, err := mapper.New(mapper.Config{
		Logger: cfg.Logger, Clock: cfg.Clock, Domain: cfg.BaseDomain,
		DNS: mapper.DNSSettings{
			MagicDNS: !cfg.DisableMagicDNS, Nameservers: cfg.Nameservers, SearchDomains: cfg.SearchDomains,
		},
		DERPMap:  func() *ctrl.DERPMap { return s.derpMap },
		Registry: s.registry,
	})
	if err != nil {
		s.store.Close()
		return nil, err
	}
	st, err := state.New(ctx, state.Config{
		Store: s.store, Logger: cfg.Logger, Clock: cfg.Clock,
		Prefix4: cfg.Prefix4, Prefix6: cfg.Prefix6, OnChange: b.OnChange,
	})
	if err != nil {
		s.store.Close()
		return nil, err
	}
	// The policy is in force before the batcher's first snapshot, so no
	// map is ever built without it.
	if cfg.PolicyFile != "" {
		s.polFile = &policyFile{path: cfg.PolicyFile, st: st, log: cfg.Logger}
		err = s.polFile.load(ctx, true)
	} else {
		err = st.LoadPolicy(ctx)
	}
	if err != nil {
		s.store.Close()
		return nil, err
	}
	b.Start(st)
	s.state, s.batcher = st, b
	if !cfg.DisableDERP {
		if s.relay, err = newEmbeddedRelay(ctx, cfg, s.store, st); err != nil {
			s.store.Close()
			return nil, err
		}
	}
	s.registry.MustRegister(newStateCollector(st, b))

	s.api, err = api.New(api.Config{
		ServerURL: cfg.ServerURL, NoiseKey: noiseKey, State: st, Batcher: b,
		Logger: cfg.Logger, Registry: s.registry, NodeKeyExpiry: cfg.NodeKeyExpiry,
	})
	if err != nil {
		s.store.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	s.api.Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.Handle("/api/v1/", admin.NewHandler(admin.Config{State: st, Store: s.store, Logger: cfg.Logger, RequireAPIKey: true, PolicyFile: cfg.PolicyFile}))
	mux.HandleFunc("GET /{$}", s.handleRoot)
	if s.relay != nil {
		mountRelay(mux, s.relay)
	}
	s.handler = mux
	// The local admin socket also serves Go's profiler and the metrics:
	// only someone who can open the 0600 socket in the state dir reaches it.
	amux := http.NewServeMux()
	amux.Handle("/api/v1/", admin.NewHandler(admin.Config{State: st, Store: s.store, Logger: cfg.Logger, PolicyFile: cfg.PolicyFile}))
	amux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	amux.HandleFunc("/debug/pprof/", pprof.Index)
	amux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	amux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.adminH = amux
	return s, nil
}

func (c *Config) setDefaults() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.StateDir == "" {
		c.StateDir = "weft-state"
	}
	if c.Listen == "" {
		c.Listen = ":8080"
		if c.ACMEHostname != "" {
			c.Listen = ":443"
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key must be given together")
	}
	if c.ServerURL == "" {
		switch {
		case c.ACMEHostname != "":
			c.ServerURL = "https://" + c.ACMEHostname
		default:
			host, port, err := net.SplitHostPort(c.Listen)
			if err != nil {
				return fmt.Errorf("--listen %q: %w", c.Listen, err)
			}
			if host == "" || host == "0.0.0.0" || host == "::" {
				if h, err := os.Hostname(); err == nil {
					host = h
				} else {
					host = "localhost"
				}
			}
			scheme := "http"
			if c.TLSCert != "" {
				scheme = "https"
			}
			c.ServerURL = scheme + "://" + net.JoinHostPort(host, port)
		}
	}
	if _, err := url.Parse(c.ServerURL); err != nil {
		return fmt.Errorf("--server-url: %w", err)
	}
	if c.BaseDomain == "" {
		c.BaseDomain = "weft.internal"
	}
	if c.STUNListen == "" {
		c.STUNListen = ":3478"
	}
	if c.STUNListen == "none" {
		c.STUNListen = ""
	}
	if c.EphemeralTimeout == 0 {
		c.EphemeralTimeout = 30 * time.Minute
	}
	return nil
}

func loadDERPMap(path string) (*ctrl.DERPMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--derp-map: %w", err)
	}
	var m ctrl.DERPMap
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("--derp-map %s: not a DERP map in JSON: %w", path, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("--derp-map %s: %w", path, err)
	}
	return &m, nil
}

// loadOrCreateNoiseKey keeps the server's Noise key in the store: a running
// client keeps the old public key, so it must survive restarts.
func loadOrCreateNoiseKey(ctx context.Context, st store.Store) (key.MachinePrivate, error) {
	var k key.MachinePrivate
	err := loadOrCreateSetting(ctx, st, noiseKeySetting, "Noise key", &k, func() textKey { return key.NewMachine() })
	return k, err
}

// textKey is a private key with a text form, as stored in settings.
type textKey interface{ MarshalText() ([]byte, error) }

// loadOrCreateSetting decodes the setting name into dst, or, when it does
// not exist yet, stores a fresh value from gen and decodes that.
func loadOrCreateSetting(ctx context.Context, st store.Store, name, what string, dst interface{ UnmarshalText([]byte) error }, gen func() textKey) error {
	v, err := st.Setting(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		t, _ := gen().MarshalText()
		if err := st.PutSetting(ctx, name, string(t)); err != nil {
			return fmt.Errorf("save %s: %w", what, err)
		}
		v, err = string(t), nil
	}
	if err != nil {
		return fmt.Errorf("load %s: %w", what, err)
	}
	if err := dst.UnmarshalText([]byte(v)); err != nil {
		return fmt.Errorf("stored %s is corrupt: %w", what, err)
	}
	return nil
}

// Handler returns the public HTTP handler (control protocol, admin API with
// API keys, metrics).
func (s *Server) Handler() http.Handler { return s.handler }

// AdminHandler returns the admin API without API-key checks, for the local
// socket.
func (s *Server) AdminHandler() http.Handler { return s.adminH }

// State returns the node-table owner (for tests and benchmarks).
func (s *Server) State() *state.State { return s.state }

// URL returns the server URL clients use.
func (s *Server) URL() string { return s.cfg.ServerURL }

func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "weft-control\n\nJoin this network with:\n  tailscale up --login-server=%s\n", s.cfg.ServerURL)
}

// Serve listens on the public address and the admin socket until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on an existing listener.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	var tlsConf *tls.Config
	switch {
	case s.cfg.ACMEHostname != "":
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(s.cfg.ACMEHostname),
			Cache:      autocert.DirCache(filepath.Join(s.cfg.StateDir, "acme")),
		}
		tlsConf = m.TLSConfig()
	case s.cfg.TLSCert != "":
		r, err := newCertReloader(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return err
		}
		tlsConf = &tls.Config{GetCertificate: r.GetCertificate}
	}
	if tlsConf != nil {
		// The ts2021 upgrade is HTTP/1.1 only; DERP too. (ACME's
		// tls-alpn-01 protocol stays in the list.)
		tlsConf.NextProtos = append([]string{"http/1.1"}, tlsConf.NextProtos...)
		if s.relay != nil {
			var err error
			if tlsConf, err = s.relay.TLSConfig(tlsConf); err != nil {
				return err
			}
		}
		ln = tls.NewListener(ln, tlsConf)
	}
	if s.relay != nil && s.cfg.STUNListen != "" {
		pc, err := net.ListenPacket("udp", s.cfg.STUNListen)
		if err != nil {
			return fmt.Errorf("STUN listen %s: %w (set --stun-listen, or none)", s.cfg.STUNListen, err)
		}
		defer pc.Close()
		go s.relay.ServeSTUN(ctx, pc)
	}

	sock := admin.SocketPath(s.cfg.StateDir)
	if err := os.MkdirAll(s.cfg.StateDir, 0o700); err != nil {
		return err
	}
	aln, err := admin.ListenUnix(s.cfg.StateDir)
	if err != nil {
		return err
	}

	pub := &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	adm := &http.Server{Handler: s.adminH, ReadHeaderTimeout: 30 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- pub.Serve(ln) }()
	go func() { errc <- adm.Serve(aln) }()
	go s.collectEphemeral(ctx)
	if s.polFile != nil {
		go s.polFile.run(ctx, time.Second)
	}
	s.log.Info("weft-control serving", "listen", ln.Addr().String(), "url", s.cfg.ServerURL, "admin", sock, "tls", tlsConf != nil)

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.batcher.Close()
	s.api.Close()
	if s.relay != nil {
		s.relay.Close() // tells DERP clients to reconnect elsewhere
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pub.Shutdown(sctx)
	adm.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) collectEphemeral(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n := s.state.ExpireInactiveEphemeral(ctx, s.cfg.EphemeralTimeout); n > 0 {
				s.log.Info("deleted inactive ephemeral nodes", "count", n)
			}
		}
	}
}

// Close releases the store.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.batcher.Close()
		err = s.store.Close()
	})
	return err
}

// stateCollector exports node counts as Prometheus gauges at scrape time.
type stateCollector struct {
	st     *state.State
	b      *mapper.Batcher
	nodes  *prometheus.Desc
	online *prometheus.Desc
}

func newStateCollector(st *state.State, b *mapper.Batcher) *stateCollector {
	return &stateCollector{
		st: st, b: b,
		nodes:  prometheus.NewDesc("weft_control_nodes", "Registered nodes.", nil, nil),
		online: prometheus.NewDesc("weft_control_nodes_online", "Nodes with a live map session.", nil, nil),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.nodes
	ch <- c.online
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.st.Snapshot()
	online := 0
	for _, n := range snap.Nodes {
		if n.Online {
			online++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.nodes, prometheus.GaugeValue, float64(len(snap.Nodes)))
	ch <- prometheus.MustNewConstMetric(c.online, prometheus.GaugeValue, float64(online))
}
