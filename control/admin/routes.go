package admin

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"weft.dev/weft/control/state"
)

// Exit routes. Tailscale clients advertise both with --advertise-exit-node
// and the admin console approves them as one ("use as exit node"), so
// approving or unapproving either one applies to both.
var (
	exit4 = netip.MustParsePrefix("0.0.0.0/0")
	exit6 = netip.MustParsePrefix("::/0")
)

func routesJSON(n *state.Node) NodeRoutes {
	return NodeRoutes{
		NodeID:     n.ID,
		Node:       n.GivenName,
		Advertised: nonNil(n.AdvertisedRoutes),
		Approved:   nonNil(n.ApprovedRoutes),
		Primary:    nonNil(n.PrimaryRoutes()),
	}
}

// listRoutes answers the nodes that advertise or have approved routes.
func (h *handler) listRoutes(w http.ResponseWriter, r *http.Request) {
	out := []NodeRoutes{}
	for _, n := range h.st.Snapshot().Nodes {
		if len(n.AdvertisedRoutes) > 0 || len(n.ApprovedRoutes) > 0 {
			out = append(out, routesJSON(n))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// parseRoutes parses the request's routes, adding the other exit route
// when one is given.
func parseRoutes(in []string) ([]netip.Prefix, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf(`no routes given: send {"routes":["10.0.0.0/24"]} (see advertised routes with: weft-control routes list)`)
	}
	var out []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("invalid route %q: use CIDR notation like 10.0.0.0/24 or 0.0.0.0/0", s)
		}
		if p != p.Masked() {
			return nil, fmt.Errorf("route %s has host bits set: use %s", p, p.Masked())
		}
		out = append(out, p)
		if p == exit4 || p == exit6 {
			out = append(out, exit4, exit6)
		}
	}
	return sortRoutes(out), nil
}

func sortRoutes(rs []netip.Prefix) []netip.Prefix {
	slices.SortFunc(rs, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(rs)
}

func (h *handler) approveRoutes(w http.ResponseWriter, r *http.Request) {
	h.changeRoutes(w, r, true)
}

func (h *handler) unapproveRoutes(w http.ResponseWriter, r *http.Request) {
	h.changeRoutes(w, r, false)
}

// changeRoutes adds routes to, or removes them from, the approved set.
// Approving a route the node does not advertise is allowed (it may
// advertise it later) but flagged.
func (h *handler) changeRoutes(w http.ResponseWriter, r *http.Request, approve bool) {
	n, ok := h.node(w, r)
	if !ok {
		return
	}
	var req RoutesRequest
	if !decode(w, r, &req, `{"routes":["10.0.0.0/24"]}`) {
		return
	}
	routes, err := parseRoutes(req.Routes)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var next []netip.Prefix
	if approve {
		next = sortRoutes(append(slices.Clone(n.ApprovedRoutes), routes...))
	} else {
		for _, p := range n.ApprovedRoutes {
			if !slices.Contains(routes, p) {
				next = append(next, p)
			}
		}
	}
	if !slices.Equal(next, n.ApprovedRoutes) {
		if n, err = h.st.SetApprovedRoutes(r.Context(), n.ID, next); err != nil {
			fail(w, err, http.StatusInternalServerError)
			return
		}
	}
	res := RoutesResult{NodeRoutes: routesJSON(n)}
	if approve {
		for _, p := range routes {
			if !slices.Contains(n.AdvertisedRoutes, p) {
				res.NotAdvertised = append(res.NotAdvertised, p)
			}
		}
		if len(res.NotAdvertised) > 0 {
			how := "tailscale up --advertise-routes=…"
			if slices.Contains(res.NotAdvertised, exit4) || slices.Contains(res.NotAdvertised, exit6) {
				how = "tailscale up --advertise-exit-node"
			}
			res.Warning = fmt.Sprintf("node %q does not advertise %s: approved anyway, but not served until the node advertises it (%s)", n.GivenName, joinPrefixes(res.NotAdvertised), how)
		}
	}
	writeJSON(w, http.StatusOK, res)
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}
