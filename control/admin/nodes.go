package admin

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"weft.dev/weft/control/state"
)

// listNodes answers every node, or with ?user=NAME one user's nodes.
func (h *handler) listNodes(w http.ResponseWriter, r *http.Request) {
	var uid int64
	if name := r.URL.Query().Get("user"); name != "" {
		u, ok := h.st.UserByName(name)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no user %q: list users with: weft-control users list", name))
			return
		}
		uid = u.ID
	}
	now := h.st.Now()
	snap := h.st.Snapshot()
	out := make([]Node, 0, len(snap.Nodes))
	for _, n := range snap.Nodes {
		if uid == 0 || n.UserID == uid {
			out = append(out, h.nodeJSON(n, now))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) getNode(w http.ResponseWriter, r *http.Request) {
	n, ok := h.node(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, h.nodeJSON(n, h.st.Now()))
}

func (h *handler) listPending(w http.ResponseWriter, r *http.Request) {
	logins := h.st.PendingLogins()
	out := make([]PendingLogin, 0, len(logins))
	for _, l := range logins {
		out = append(out, PendingLogin{
			ID: l.ID, Hostname: l.Hostname, NodeKey: l.NodeKey.String(),
			Created: l.Created, Expires: l.Created.Add(state.LoginTTL),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// loginID accepts the bare login ID or the whole login URL the client
// printed (…/register/ID), since that is what users copy.
func loginID(s string) string {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func (h *handler) registerNode(w http.ResponseWriter, r *http.Request) {
	var req RegisterNodeRequest
	if !decode(w, r, &req, `{"id":"LOGIN-ID","user":"alice"}`) {
		return
	}
	id := loginID(req.ID)
	if id == "" || req.User == "" {
		writeError(w, http.StatusBadRequest, `need both "id" (the login ID from the URL the client printed) and "user"; list waiting logins with: weft-control nodes pending`)
		return
	}
	n, err := h.st.ApproveLogin(r.Context(), id, req.User)
	if err != nil {
		// Unknown user or login are ErrNotFound; what remains (a node key
		// taken by another machine, an exhausted pool) is a conflict.
		fail(w, err, http.StatusConflict)
		return
	}
	writeJSON(w, http.StatusOK, h.nodeJSON(n, h.st.Now()))
}

func (h *handler) deleteNode(w http.ResponseWriter, r *http.Request) {
	n, ok := h.node(w, r)
	if !ok {
		return
	}
	if err := h.st.Delete(r.Context(), n.ID); err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) renameNode(w http.ResponseWriter, r *http.Request) {
	n, ok := h.node(w, r)
	if !ok {
		return
	}
	var req RenameNodeRequest
	if !decode(w, r, &req, `{"name":"new-name"}`) {
		return
	}
	if !state.ValidLabel(req.Name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid name %q: use lower-case letters, digits and '-' (at most 63), e.g. %q", req.Name, state.SanitizeLabel(req.Name)))
		return
	}
	if other, ok := h.st.NodeByName(req.Name); ok && other.ID != n.ID {
		writeError(w, http.StatusConflict, fmt.Sprintf("name %q is already used by node %d: pick another name or rename that node first", req.Name, other.ID))
		return
	}
	n, err := h.st.Rename(r.Context(), n.ID, req.Name)
	if err != nil {
		// The name was valid and free a moment ago: a concurrent rename.
		fail(w, err, http.StatusConflict)
		return
	}
	writeJSON(w, http.StatusOK, h.nodeJSON(n, h.st.Now()))
}

// expireNode expires the node key now, forcing the client to log in again.
// An already expired node keeps its earlier expiry.
func (h *handler) expireNode(w http.ResponseWriter, r *http.Request) {
	n, ok := h.node(w, r)
	if !ok {
		return
	}
	now := h.st.Now()
	if !n.IsExpired(now) {
		var err error
		if n, err = h.st.Expire(r.Context(), n.ID, now); err != nil {
			fail(w, err, http.StatusInternalServerError)
			return
		}
	}
	writeJSON(w, http.StatusOK, h.nodeJSON(n, now))
}

func (h *handler) setNodeIP(w http.ResponseWriter, r *http.Request) {
	n, ok := h.node(w, r)
	if !ok {
		return
	}
	var req SetIPRequest
	if !decode(w, r, &req, `{"ip":"100.64.0.10"}`) {
		return
	}
	ip, err := netip.ParseAddr(req.IP)
	if err != nil || ip.Zone() != "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid IP address %q: give one IPv4 or IPv6 address, e.g. 100.64.0.10", req.IP))
		return
	}
	ip = ip.Unmap()
	p4, p6 := h.st.Prefixes()
	pool := p6
	if ip.Is4() {
		pool = p4
	}
	if !pool.IsValid() || !pool.Contains(ip) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("address %s is outside the tailnet prefix %s: pick an address inside it", ip, pool))
		return
	}
	for _, o := range h.st.Snapshot().Nodes {
		if o.ID != n.ID && (o.IPv4 == ip || o.IPv6 == ip) {
			writeError(w, http.StatusConflict, fmt.Sprintf("address %s is already used by node %q (%d): pick a free address or move that node first", ip, o.GivenName, o.ID))
			return
		}
	}
	n, err = h.st.SetIP(r.Context(), n.ID, ip)
	if err != nil {
		// Reserved addresses (network, broadcast, the DNS address) end
		// up here.
		fail(w, err, http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, h.nodeJSON(n, h.st.Now()))
}

func (h *handler) setNodeTags(w http.ResponseWriter, r *http.Request) {
	n, ok := h.node(w, r)
	if !ok {
		return
	}
	var req SetTagsRequest
	if !decode(w, r, &req, `{"tags":["tag:server"]}`) {
		return
	}
	if err := validTags(req.Tags); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	tags := slices.Clone(req.Tags)
	slices.Sort(tags)
	tags = slices.Compact(tags)
	n, err := h.st.SetTags(r.Context(), n.ID, tags)
	if err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, h.nodeJSON(n, h.st.Now()))
}
