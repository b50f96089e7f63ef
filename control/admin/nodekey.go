package admin

import (
	"fmt"
	"net/http"

	"weft.dev/weft/wire/key"
)

// NodeKeyLookup answers GET /api/v1/nodekeys/{nodekey}: whether a node key
// belongs to a registered node and may use the network's relays. A
// standalone weft-derp (-verify-control-url) asks this for every client it
// admits, so the answer is small and the route is read-only (no audit log
// line per DERP connection).
type NodeKeyLookup struct {
	// NodeKey echoes the key asked about ("nodekey:<64 hex>").
	NodeKey string `json:"nodeKey"`
	// Node is the node's ID; Name its MagicDNS label.
	Node int64  `json:"node"`
	Name string `json:"name"`
	// Expired reports a node whose key has expired.
	Expired bool `json:"expired"`
	// Allow is the admission decision: registered and not expired.
	Allow bool `json:"allow"`
}

// nodeKeyRoutes registers the node-key lookup on m.
func (h *handler) nodeKeyRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/nodekeys/{nodekey}", h.lookupNodeKey)
}

// lookupNodeKey answers 200 with a NodeKeyLookup for a registered key and
// 404 for an unknown one, so a caller that only checks the status fails
// closed.
func (h *handler) lookupNodeKey(w http.ResponseWriter, r *http.Request) {
	var k key.NodePublic
	text := r.PathValue("nodekey")
	if err := k.UnmarshalText([]byte(text)); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("bad node key %q: want nodekey:<64 hex digits>", text))
		return
	}
	n, ok := h.st.NodeByKey(k)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("node key %s is not registered with this control server", k.ShortString()))
		return
	}
	expired := n.IsExpired(h.st.Now())
	writeJSON(w, http.StatusOK, NodeKeyLookup{NodeKey: k.String(), Node: n.ID, Name: n.GivenName, Expired: expired, Allow: !expired})
}
