package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"

	"weft.dev/weft/control/mapper"
	"weft.dev/weft/control/state"
	"weft.dev/weft/noise"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// maxBody caps Noise request bodies (headscale uses the same 1 MiB).
const maxBody = 1 << 20

// Config configures the API server.
type Config struct {
	// ServerURL is the public URL clients use (login URLs are built on it).
	ServerURL string
	NoiseKey  key.MachinePrivate
	State     *state.State
	Batcher   *mapper.Batcher
	Logger    *slog.Logger
	// Registry receives the API's metrics; nil means a private registry.
	Registry prometheus.Registerer
	// NodeKeyExpiry is the lifetime of newly registered node keys; zero
	// means they never expire (headscale's default).
	NodeKeyExpiry time.Duration
}

// Server serves the control protocol.
type Server struct {
	cfg     Config
	log     *slog.Logger
	state   *state.State
	batcher *mapper.Batcher
	h2      *http2.Server
	noise   http.Handler // the mux served inside each Noise connection
	h2base  *http.Server // routes HTTP/2 errors (a peer's garbage) to debug logs
	metrics *metrics

	mu sync.Mutex
	// guarded by mu:
	conns  map[*noise.Conn]struct{} // live Noise connections, closed by Close
	closed bool
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.State == nil || cfg.Batcher == nil {
		return nil, errors.New("api: State and Batcher are required")
	}
	if cfg.NoiseKey.IsZero() {
		return nil, errors.New("api: no Noise key")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.ServerURL = strings.TrimRight(cfg.ServerURL, "/")
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger,
		state:   cfg.State,
		batcher: cfg.Batcher,
		h2:      &http2.Server{MaxConcurrentStreams: 250},
		metrics: newMetrics(cfg.Registry),
		conns:   make(map[*noise.Conn]struct{}),
	}
	s.h2base = &http.Server{ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /machine/register", s.handleRegister)
	mux.HandleFunc("POST /machine/map", s.handleMap)
	mux.HandleFunc("POST /machine/set-dns", s.handleSetDNS)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "weft-control does not implement "+r.Method+" "+r.URL.Path, http.StatusNotImplemented)
	})
	s.noise = mux
	return s, nil
}

// Register adds the public endpoints to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /key", s.handleKey)
	mux.HandleFunc("/ts2021", s.handleNoise)
	mux.HandleFunc("GET /register/{id}", s.handleRegisterPage)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
}

func (s *Server) handleKey(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.Atoi(r.URL.Query().Get("v"))
	if err != nil {
		http.Error(w, "missing or invalid capability version ?v=N", http.StatusBadRequest)
		return
	}
	if v < int(ctrl.CapVerNoiseAnyPort) {
		http.Error(w, fmt.Sprintf("client capability version %d is too old; weft-control needs %d or newer: upgrade the client", v, ctrl.MinCapabilityVersion), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ctrl.OverTLSPublicKeyResponse{PublicKey: s.cfg.NoiseKey.Public()})
}

// handleNoise upgrades to ts2021 and serves HTTP/2 on the Noise connection.
func (s *Server) handleNoise(w http.ResponseWriter, r *http.Request) {
	conn, err := noise.AcceptHTTP(r.Context(), w, r, noise.ServerConfig{
		PrivateKey:   s.cfg.NoiseKey,
		MinVersion:   uint16(ctrl.MinCapabilityVersion),
		EarlyPayload: true,
	})
	if err != nil {
		s.log.Debug("noise upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.conns[conn] = struct{}{}
	s.mu.Unlock()
	// Serve on a goroutine of our own and return: the hijacked HTTP/1
	// request, its response and its bufio buffers are then garbage,
	// instead of living as long as the connection (8 KiB per node).
	go s.serveNoise(conn)
}

func (s *Server) serveNoise(conn *noise.Conn) {
	s.metrics.noiseConns.Inc()
	defer s.metrics.noiseConns.Dec()
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		conn.Close()
	}()
	ctx := context.WithValue(context.Background(), machineKeyCtx{}, conn.PeerMachineKey())
	ctx = context.WithValue(ctx, capVerCtx{}, int(conn.ProtocolVersion()))
	s.h2.ServeConn(conn, &http2.ServeConnOpts{Context: ctx, Handler: s.noise, BaseConfig: s.h2base})
}

// Close closes every Noise connection (their map streams end) and refuses
// new ones.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

type machineKeyCtx struct{}
type capVerCtx struct{}

func machineKeyOf(r *http.Request) (key.MachinePublic, bool) {
	k, ok := r.Context().Value(machineKeyCtx{}).(key.MachinePublic)
	return k, ok && !k.IsZero()
}

// readRequest authenticates a /machine/* request by its Noise connection,
// reads and decodes its body and checks the client's capability version.
// On failure it has written the error response and returns ok false.
func readRequest[T any](w http.ResponseWriter, r *http.Request, decode func([]byte) (*T, error), version func(*T) ctrl.CapabilityVersion) (machine key.MachinePublic, req *T, ok bool) {
	machine, ok = machineKeyOf(r)
	if !ok {
		http.Error(w, "not a Noise connection", http.StatusUnauthorized)
		return machine, nil, false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return machine, nil, false
	}
	if req, err = decode(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return machine, nil, false
	}
	if v := version(req); v < ctrl.MinCapabilityVersion {
		http.Error(w, fmt.Sprintf("client capability version %d is too old; weft-control needs %d (Tailscale 1.80) or newer", v, ctrl.MinCapabilityVersion), http.StatusBadRequest)
		return machine, nil, false
	}
	return machine, req, true
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	machine, req, ok := readRequest(w, r, ctrl.DecodeRegisterRequest, func(q *ctrl.RegisterRequest) ctrl.CapabilityVersion { return q.Version })
	if !ok {
		return
	}
	resp := s.register(r.Context(), machine, req)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) handleSetDNS(w http.ResponseWriter, r *http.Request) {
	// tailscale cert's DNS-01 challenge; weft-control has no ACME DNS
	// provider, so acknowledge without publishing (an empty body would
	// fail the client's JSON decode).
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, "{}")
}

func (s *Server) handleRegisterPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><title>weft: approve this machine</title>
<h1>Machine login</h1>
<p>An administrator of this weft network approves this login by running, on the server:</p>
<pre>weft-control nodes register --user USERNAME %s</pre>
<p>This page stays valid for %s.</p>`, html.EscapeString(id), state.LoginTTL)
}
