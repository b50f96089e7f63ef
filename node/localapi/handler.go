package localapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/user"
	"runtime/pprof"
	"strconv"
	"strings"

	"weft.dev/weft/node/ipn"
	"weft.dev/weft/node/ipn/ipnlocal"
)

// Config configures a Handler.
type Config struct {
	Backend *ipnlocal.Backend
	Logger  *slog.Logger
	// Metrics serves /localapi/v0/metrics (Prometheus text); nil gives 404.
	Metrics http.Handler
	// DaemonUID is the daemon's own uid, always allowed to write.
	DaemonUID int
	// LookupUID resolves the --operator user name; nil uses os/user.
	LookupUID func(name string) (int, error)
}

// Handler serves the LocalAPI.
type Handler struct {
	cfg Config
	b   *ipnlocal.Backend
	log *slog.Logger
	mux *http.ServeMux
}

// NewHandler returns the LocalAPI handler.
func NewHandler(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LookupUID == nil {
		cfg.LookupUID = lookupUID
	}
	h := &Handler{cfg: cfg, b: cfg.Backend, log: cfg.Logger, mux: http.NewServeMux()}
	r, w := h.read, h.write
	m := h.mux
	m.HandleFunc("GET /localapi/v0/status", r(h.serveStatus))
	m.HandleFunc("GET /localapi/v0/prefs", r(h.servePrefs))
	m.HandleFunc("PATCH /localapi/v0/prefs", w(h.serveEditPrefs))
	m.HandleFunc("POST /localapi/v0/start", w(h.serveStart))
	m.HandleFunc("POST /localapi/v0/login-interactive", w(h.serveLoginInteractive))
	m.HandleFunc("POST /localapi/v0/logout", w(h.serveLogout))
	m.HandleFunc("GET /localapi/v0/whois", r(h.serveWhoIs))
	m.HandleFunc("POST /localapi/v0/ping", r(h.servePing))
	m.HandleFunc("GET /localapi/v0/netcheck", r(h.serveNetcheck))
	m.HandleFunc("GET /localapi/v0/metrics", r(h.serveMetrics))
	m.HandleFunc("GET /localapi/v0/goroutines", w(h.serveGoroutines))
	m.HandleFunc("GET /localapi/v0/watch-ipn-bus", r(h.serveWatch))
	m.HandleFunc("GET /localapi/v0/profiles/", r(h.serveProfiles))
	m.HandleFunc("GET /localapi/v0/profiles/current", r(h.serveCurrentProfile))
	m.HandleFunc("PUT /localapi/v0/profiles/", w(h.serveNewProfile))
	m.HandleFunc("POST /localapi/v0/profiles/{id}", w(h.serveSwitchProfile))
	m.HandleFunc("GET /localapi/v0/hostinfo", r(h.serveHostinfo))
	m.HandleFunc("GET /localapi/v0/derpmap", r(h.serveDERPMap))
	m.HandleFunc("GET /localapi/v0/debug-local-creds", r(h.serveLocalCreds))
	m.HandleFunc("POST /localapi/v0/debug", w(h.serveDebug))
	return h
}

// ServeHTTP implements http.Handler. Unknown paths get 404 and wrong
// methods 405 (from the mux); handlers answer 400 to bad input.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/localapi/") {
		http.Error(w, "weftd: not a LocalAPI path; try /localapi/v0/status", http.StatusNotFound)
		return
	}
	h.mux.ServeHTTP(w, r)
}

func lookupUID(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return -1, err
	}
	return strconv.Atoi(u.Uid)
}

// permitWrite decides whether the caller may change state.
func (h *Handler) permitWrite(c Creds) (bool, string) {
	switch {
	case !c.Known:
		return false, "caller credentials unknown"
	case c.UID == 0:
		return true, "root"
	case c.UID == h.cfg.DaemonUID:
		return true, "same user as weftd"
	}
	if op := h.b.Prefs().OperatorUser; op != "" {
		if uid, err := h.cfg.LookupUID(op); err == nil && uid == c.UID {
			return true, "operator " + op
		}
	}
	return false, "not root, not weftd's user and not the --operator"
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (h *Handler) read(f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h.run(w, r, f) }
}

func (h *Handler) write(f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, _ := h.permitWrite(credsFrom(r)); !ok {
			writeError(w, http.StatusForbidden, "access denied: "+strings.TrimPrefix(r.URL.Path, "/localapi/v0/")+" needs root or the operator user")
			return
		}
		h.run(w, r, f)
	}
}

func (h *Handler) run(w http.ResponseWriter, r *http.Request, f handlerFunc) {
	if err := f(w, r); err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, errBadRequest):
			code = http.StatusBadRequest
		case errors.Is(err, ipnlocal.ErrNoProfile):
			code = http.StatusNotFound
		case errors.Is(err, ipnlocal.ErrNotRunning):
			code = http.StatusServiceUnavailable
		case errors.Is(err, ipnlocal.ErrLoginServerChange):
			code = http.StatusConflict
		}
		writeError(w, code, err.Error())
	}
}

// writeError answers {"error": msg}, as tailscaled does.
func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request) error {
	peers := r.URL.Query().Get("peers") != "false"
	return writeJSON(w, h.b.Status(peers))
}

func (h *Handler) servePrefs(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, h.b.Prefs())
}

func (h *Handler) serveEditPrefs(w http.ResponseWriter, r *http.Request) error {
	b, err := readAll(r)
	if err != nil {
		return err
	}
	mp, err := DecodeMaskedPrefs(b)
	if err != nil {
		return err
	}
	p, err := h.b.EditPrefs(r.Context(), mp)
	if err != nil {
		return err
	}
	return writeJSON(w, p)
}

func (h *Handler) serveStart(w http.ResponseWriter, r *http.Request) error {
	b, err := readAll(r)
	if err != nil {
		return err
	}
	req, err := DecodeStartRequest(b)
	if err != nil {
		return err
	}
	if err := h.b.Start(r.Context(), ipnlocal.StartOptions{Prefs: req.Prefs, AuthKey: req.AuthKey, ForceReauth: req.ForceReauth}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) serveLoginInteractive(w http.ResponseWriter, r *http.Request) error {
	if err := h.b.StartLoginInteractive(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) serveLogout(w http.ResponseWriter, r *http.Request) error {
	if err := h.b.Logout(r.Context()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) serveWhoIs(w http.ResponseWriter, r *http.Request) error {
	a, err := parseAddr(r.URL.Query().Get("addr"))
	if err != nil {
		return err
	}
	res, ok := h.b.WhoIs(a)
	if !ok {
		writeError(w, http.StatusNotFound, "no node with address "+a.String())
		return nil
	}
	return writeJSON(w, res)
}

func (h *Handler) servePing(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	ip, err := parseAddr(q.Get("ip"))
	if err != nil {
		return err
	}
	typ, err := parsePingType(q.Get("type"))
	if err != nil {
		return err
	}
	res, err := h.b.Ping(r.Context(), ip, typ)
	if res == nil {
		return fmt.Errorf("ping: %w", err)
	}
	return writeJSON(w, res) // the failure is in res.Err, as upstream
}

func (h *Handler) serveNetcheck(w http.ResponseWriter, r *http.Request) error {
	rep, err := h.b.Netcheck(r.Context())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return nil
	}
	return writeJSON(w, rep)
}

// serveDebug runs a debug action (tailscaled's POST debug?action=...).
func (h *Handler) serveDebug(w http.ResponseWriter, r *http.Request) error {
	action := r.URL.Query().Get("action")
	switch action {
	case "restun", "rebind":
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown debug action %q; want restun or rebind", action))
		return nil
	}
	if err := h.b.DebugAction(action); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return nil
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, err := io.WriteString(w, "done\n")
	return err
}

func (h *Handler) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	if h.cfg.Metrics == nil {
		writeError(w, http.StatusNotFound, "metrics are not enabled")
		return nil
	}
	h.cfg.Metrics.ServeHTTP(w, r)
	return nil
}

func (h *Handler) serveGoroutines(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	return pprof.Lookup("goroutine").WriteTo(w, 2)
}

// serveWatch streams notifications as JSON lines until the client goes.
func (h *Handler) serveWatch(w http.ResponseWriter, r *http.Request) error {
	var mask ipn.NotifyWatchOpt
	if s := r.URL.Query().Get("mask"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: mask %q is not a number", errBadRequest, s)
		}
		mask = ipn.NotifyWatchOpt(v)
	}
	f, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f != nil {
		f.Flush()
	}
	enc := json.NewEncoder(w)
	err := h.b.Watch(r.Context(), mask, func(n *ipn.Notify) bool {
		if err := enc.Encode(n); err != nil {
			return false
		}
		if f != nil {
			f.Flush()
		}
		return true
	})
	if err != nil {
		h.log.Info("localapi: watch ended", "err", err)
	}
	return nil
}

func (h *Handler) serveProfiles(w http.ResponseWriter, r *http.Request) error {
	if r.URL.Path != "/localapi/v0/profiles/" {
		writeError(w, http.StatusNotFound, "unknown profiles path")
		return nil
	}
	return writeJSON(w, h.b.Profiles())
}

func (h *Handler) serveCurrentProfile(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, h.b.CurrentProfile())
}

func (h *Handler) serveNewProfile(w http.ResponseWriter, r *http.Request) error {
	p, err := h.b.NewProfile(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, p)
}

func (h *Handler) serveSwitchProfile(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("id")
	id, err := h.b.FindProfile(name)
	if err != nil {
		return err
	}
	if err := h.b.SwitchProfile(r.Context(), id); err != nil {
		return err
	}
	return writeJSON(w, h.b.CurrentProfile())
}

func (h *Handler) serveHostinfo(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, h.b.Hostinfo())
}

func (h *Handler) serveDERPMap(w http.ResponseWriter, r *http.Request) error {
	nm := h.b.NetMap()
	if nm == nil {
		writeError(w, http.StatusServiceUnavailable, "no network map yet: run weft up")
		return nil
	}
	return writeJSON(w, nm.DERPMap)
}

func (h *Handler) serveLocalCreds(w http.ResponseWriter, r *http.Request) error {
	c := credsFrom(r)
	ok, why := h.permitWrite(c)
	return writeJSON(w, LocalCreds{Known: c.Known, UID: c.UID, PID: c.PID, CanWrite: ok, Operator: h.b.Prefs().OperatorUser, Reason: why})
}

func readAll(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: body larger than %d bytes", errBadRequest, maxBody)
		}
		return nil, fmt.Errorf("%w: reading body: %v", errBadRequest, err)
	}
	return b, nil
}
