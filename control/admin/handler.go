package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
)

// maxBody caps every request body.
const maxBody = 64 << 10

// touchEvery limits how often an API key's last-use time is written, so a
// busy script does not turn every request into a store write.
const touchEvery = time.Minute

// Config configures the admin handler.
type Config struct {
	// State is the node table every operation goes through.
	State *state.State
	// Store is the store State was loaded from; it is used only for key
	// listings, key expiry and API-key last-use times.
	Store  store.Store
	Logger *slog.Logger
	// RequireAPIKey makes every request carry a valid
	// "Authorization: Bearer weft-api-…" header. Set it on the public
	// listener; the unix socket relies on its file mode instead.
	RequireAPIKey bool
	// PolicyFile is the server's --policy-file: when set, the policy
	// cannot be replaced through the API.
	PolicyFile string
}

// handler serves /api/v1/. It holds no mutable state of its own.
type handler struct {
	st  *state.State
	db  store.Store
	log *slog.Logger
	mux *http.ServeMux
	key bool
	// policyFile, when set, is authoritative for the policy.
	policyFile string
}

// NewHandler returns the admin API handler. Mount it so that it sees whole
// paths, e.g. mux.Handle("/api/v1/", admin.NewHandler(cfg)).
func NewHandler(cfg Config) http.Handler {
	if cfg.State == nil || cfg.Store == nil {
		panic("admin.NewHandler: Config.State and Config.Store are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{st: cfg.State, db: cfg.Store, log: cfg.Logger, mux: http.NewServeMux(), key: cfg.RequireAPIKey, policyFile: cfg.PolicyFile}
	m := h.mux
	m.HandleFunc("GET /api/v1/users", h.listUsers)
	m.HandleFunc("POST /api/v1/users", h.createUser)
	m.HandleFunc("DELETE /api/v1/users/{name}", h.deleteUser)

	m.HandleFunc("GET /api/v1/keys", h.listPreAuthKeys)
	m.HandleFunc("POST /api/v1/keys", h.createPreAuthKey)
	m.HandleFunc("POST /api/v1/keys/{prefix}/expire", h.expirePreAuthKey)

	m.HandleFunc("GET /api/v1/nodes", h.listNodes)
	m.HandleFunc("GET /api/v1/nodes/pending", h.listPending)
	m.HandleFunc("POST /api/v1/nodes/register", h.registerNode)
	m.HandleFunc("GET /api/v1/nodes/{node}", h.getNode)
	m.HandleFunc("DELETE /api/v1/nodes/{node}", h.deleteNode)
	m.HandleFunc("POST /api/v1/nodes/{node}/rename", h.renameNode)
	m.HandleFunc("POST /api/v1/nodes/{node}/expire", h.expireNode)
	m.HandleFunc("POST /api/v1/nodes/{node}/ip", h.setNodeIP)
	m.HandleFunc("POST /api/v1/nodes/{node}/tags", h.setNodeTags)

	m.HandleFunc("GET /api/v1/routes", h.listRoutes)
	m.HandleFunc("POST /api/v1/nodes/{node}/routes/approve", h.approveRoutes)
	m.HandleFunc("POST /api/v1/nodes/{node}/routes/unapprove", h.unapproveRoutes)

	m.HandleFunc("GET /api/v1/dns/records", h.listDNSRecords)
	m.HandleFunc("POST /api/v1/dns/records", h.addDNSRecord)
	m.HandleFunc("DELETE /api/v1/dns/records/{id}", h.deleteDNSRecord)

	m.HandleFunc("GET /api/v1/policy", h.getPolicy)
	m.HandleFunc("PUT /api/v1/policy", h.setPolicy)
	m.HandleFunc("POST /api/v1/policy/check", h.checkPolicy)
	m.HandleFunc("GET /api/v1/policy/history", h.policyHistory)

	m.HandleFunc("GET /api/v1/apikeys", h.listAPIKeys)
	m.HandleFunc("POST /api/v1/apikeys", h.createAPIKey)
	m.HandleFunc("POST /api/v1/apikeys/{prefix}/expire", h.expireAPIKey)
	h.nodeKeyRoutes(m)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.key && !h.authorize(w, r) {
		return
	}
	limit := int64(maxBody)
	if strings.HasPrefix(r.URL.Path, "/api/v1/policy") {
		limit = maxPolicyBody
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if _, pattern := h.mux.Handler(r); pattern != "" {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.mux.ServeHTTP(w, r)
			return
		}
		// Changes are logged as an audit trail.
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.mux.ServeHTTP(sw, r)
		h.log.Info("admin request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "remote", r.RemoteAddr)
		return
	}
	// No route matched: let the mux decide between 404 and 405 (and any
	// redirect), but answer in JSON like every other error.
	rec := &statusRecorder{header: make(http.Header)}
	h.mux.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", rec.header.Get("Allow"))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, rec.header.Get("Allow")))
	case http.StatusNotFound, 0, http.StatusOK:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no admin API route %s %s: routes live under /api/v1/ (users, keys, nodes, routes, dns/records, policy, apikeys)", r.Method, r.URL.Path))
	default:
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
	}
}

// authorize checks the bearer API key, answering 401 itself when it fails.
func (h *handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	fail := func(msg string) bool {
		h.log.Info("admin: refused request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", msg)
		w.Header().Set("WWW-Authenticate", `Bearer realm="weft-control"`)
		writeError(w, http.StatusUnauthorized, msg)
		return false
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return fail("missing API key: send the header \"Authorization: Bearer weft-api-…\"; create a key on the server with: weft-control apikeys create")
	}
	scheme, text, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return fail("malformed Authorization header: use \"Authorization: Bearer weft-api-…\"")
	}
	k, err := h.st.CheckAPIKey(r.Context(), strings.TrimSpace(text))
	if err != nil {
		return fail(err.Error() + ": create a new key on the server with: weft-control apikeys create")
	}
	now := h.st.Now()
	if now.Sub(k.LastUsed) >= touchEvery {
		// Best effort: the request is already authorised, and a failed
		// bookkeeping write must not refuse it.
		if err := h.db.TouchAPIKey(r.Context(), k.ID, now); err != nil {
			h.log.Warn("admin: record api key use", "prefix", k.Prefix, "err", err)
		}
	}
	return true
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// statusRecorder captures the mux's answer for an unmatched request.
type statusRecorder struct {
	header http.Header
	status int
}

func (s *statusRecorder) Header() http.Header { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}
func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // the client hung up if this fails; nothing to do
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg})
}

// fail answers err with the status its sentinel implies, or def. state
// returns plain errors for bad input and conflicts it detects itself, so
// each call site passes the status those mean there.
func fail(w http.ResponseWriter, err error, def int) {
	status := def
	switch {
	case errors.Is(err, state.ErrNotFound), errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, store.ErrConflict):
		status = http.StatusConflict
	}
	writeError(w, status, err.Error())
}

// decode reads a JSON body into v, rejecting unknown fields, trailing data
// and bodies over maxBody. It answers the error itself and reports whether
// the handler should go on. example shows a valid body in the message.
func decode(w http.ResponseWriter, r *http.Request, v any, example string) bool {
	return decodeBody(w, r, v, example, false)
}

// decodeOptional is decode for routes whose body may be left out.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any, example string) bool {
	return decodeBody(w, r, v, example, true)
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any, example string, optional bool) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if optional && err == io.EOF {
		return true
	}
	if err == nil {
		if dec.Decode(&struct{}{}) != io.EOF {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes: send a smaller JSON object like %s", tooBig.Limit, example))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, fmt.Sprintf("request body is empty: send a JSON object like %s", example))
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad request body: %v: send a JSON object like %s", err, example))
	}
	return false
}

// node resolves the {node} path value: a numeric ID or a node name.
func (h *handler) node(w http.ResponseWriter, r *http.Request) (*state.Node, bool) {
	ref := r.PathValue("node")
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		if n, ok := h.st.Node(id); ok {
			return n, true
		}
	}
	if n, ok := h.st.NodeByName(ref); ok {
		return n, true
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no node with ID or name %q: list nodes with: weft-control nodes list", ref))
	return nil, false
}

func (h *handler) userName(id int64) string {
	if u, ok := h.st.User(id); ok {
		return u.Name
	}
	return strconv.FormatInt(id, 10)
}

func (h *handler) nodeJSON(n *state.Node, now time.Time) Node {
	return Node{
		ID:               n.ID,
		Name:             n.GivenName,
		Hostname:         n.Hostname,
		User:             h.userName(n.UserID),
		IPv4:             n.IPv4,
		IPv6:             n.IPv6,
		Online:           n.Online,
		LastSeen:         n.LastSeen,
		Expiry:           n.Expiry,
		Expired:          n.IsExpired(now),
		Tags:             nonNil(n.Tags),
		Ephemeral:        n.Ephemeral,
		Created:          n.CreatedAt,
		AdvertisedRoutes: nonNil(n.AdvertisedRoutes),
		ApprovedRoutes:   nonNil(n.ApprovedRoutes),
		NodeKey:          n.NodeKey.String(),
		MachineKey:       n.MachineKey.String(),
	}
}

// nonNil makes empty lists encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return slices.Clone(s)
}

func expired(at, now time.Time) bool { return !at.IsZero() && !at.After(now) }
