package server

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/control/controltest"
	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/wire/ctrl"
)

// polRig is a whole weft-control in process (memory store, no relay) with
// users alice and bob, and simulated clients that record every frame.
type polRig struct {
	t      *testing.T
	srv    *Server
	st     *state.State
	url    string
	users  map[string]int64
	marker atomic.Int64
}

func newPolRig(t *testing.T, cfg Config) *polRig {
	t.Helper()
	ctx := context.Background()
	hs := httptest.NewUnstartedServer(nil)
	cfg.Store = store.NewMemory()
	cfg.StateDir = t.TempDir()
	cfg.ServerURL = "http://" + hs.Listener.Addr().String()
	cfg.DisableDERP = true
	s, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs.Config.Handler = s.Handler()
	hs.Start()
	t.Cleanup(func() { s.batcher.Close(); s.api.Close(); hs.CloseClientConnections(); hs.Close(); s.Close() })
	r := &polRig{t: t, srv: s, st: s.State(), url: hs.URL, users: map[string]int64{}}
	for _, name := range []string{"alice@example.com", "bob@example.com"} {
		u, err := r.st.CreateUser(ctx, name, "", "")
		if err != nil {
			t.Fatal(err)
		}
		r.users[name] = u.ID
	}
	return r
}

func (r *polRig) setPolicy(text string) state.PolicyResult {
	r.t.Helper()
	res, err := r.st.SetPolicy(context.Background(), []byte(text), state.PolicyOrigin{})
	if err != nil {
		r.t.Fatalf("set policy: %v", err)
	}
	return res
}

// node is one simulated client with its long poll.
type node struct {
	c      *controltest.Client
	s      *controltest.Stream
	id     ctrl.NodeID
	first  *ctrl.MapResponse
	frames chan *ctrl.MapResponse
}

// join registers a client with a key of user (and tags) and opens its poll.
func (r *polRig) join(host, user string, tags []string, hi *ctrl.Hostinfo) (*node, error) {
	ctx := context.Background()
	k, _, err := r.st.CreatePreAuthKey(ctx, state.NewPreAuthKeyParams{UserID: r.users[user], Tags: tags})
	if err != nil {
		return nil, err
	}
	c, err := controltest.Dial(ctx, r.url, nil)
	if err != nil {
		return nil, err
	}
	r.t.Cleanup(func() { c.Close() })
	if hi == nil {
		hi = &ctrl.Hostinfo{}
	}
	hi.Hostname = host
	res, err := c.Register(ctx, ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: k}, Hostinfo: hi})
	if err != nil {
		return nil, err
	}
	if res.Error != "" {
		return nil, fmt.Errorf("%s", res.Error)
	}
	s, err := c.Stream(ctx, ctrl.MapRequest{Hostinfo: hi})
	if err != nil {
		return nil, err
	}
	r.t.Cleanup(func() { s.Close() })
	first, err := s.Next()
	if err != nil {
		return nil, err
	}
	n := &node{c: c, s: s, id: first.Node.ID, first: first, frames: make(chan *ctrl.MapResponse, 100)}
	go func() {
		defer close(n.frames)
		for {
			f, err := s.Next()
			if err != nil {
				return
			}
			n.frames <- f
		}
	}()
	return n, nil
}

func (r *polRig) mustJoin(host, user string, tags ...string) *node {
	r.t.Helper()
	n, err := r.join(host, user, tags, nil)
	if err != nil {
		r.t.Fatalf("join %s: %v", host, err)
	}
	return n
}

// sync adds a DNS record, which every session receives, and returns, per
// node, the frames that arrived up to and including the one carrying it:
// everything flushed before the record was added.
func (r *polRig) sync(ns ...*node) [][]*ctrl.MapResponse {
	r.t.Helper()
	name := fmt.Sprintf("sync%d.example", r.marker.Add(1))
	if _, err := r.st.AddDNSRecord(context.Background(), name, "A", "192.0.2.1"); err != nil {
		r.t.Fatal(err)
	}
	out := make([][]*ctrl.MapResponse, len(ns))
	for i, n := range ns {
		timeout := time.After(5 * time.Second)
		for done := false; !done; {
			select {
			case f, ok := <-n.frames:
				if !ok {
					r.t.Fatalf("node %d: stream ended", n.id)
				}
				out[i] = append(out[i], f)
				if f.DNSConfig != nil && slices.ContainsFunc(f.DNSConfig.ExtraRecords, func(rec ctrl.DNSRecord) bool { return rec.Name == name }) {
					done = true
				}
			case <-timeout:
				r.t.Fatalf("node %d: no frame with DNS record %s", n.id, name)
			}
		}
	}
	return out
}

// quiet reports whether frames carry nothing but DNS and user profiles.
func quiet(fs []*ctrl.MapResponse) bool {
	for _, f := range fs {
		if f.Node != nil || f.Peers != nil || f.PeersChanged != nil || f.PeersRemoved != nil ||
			f.PeersChangedPatch != nil || f.PacketFilter != nil || f.OnlineChange != nil {
			return false
		}
	}
	return true
}

func peerIDs(s *controltest.Stream) []ctrl.NodeID {
	var out []ctrl.NodeID
	for _, p := range s.Peers() {
		out = append(out, p.ID)
	}
	return out
}

func ids(ns ...*node) []ctrl.NodeID {
	var out []ctrl.NodeID
	for _, n := range ns {
		out = append(out, n.id)
	}
	slices.Sort(out)
	return out
}

func addrStrings(n *node) []string {
	var out []string
	for _, a := range n.first.Node.Addresses {
		out = append(out, a.Addr().String())
	}
	return out
}

// portRule is the filter a node gets when srcs may reach its port.
func portRule(dst *node, port uint16, srcs ...*node) []ctrl.FilterRule {
	r := ctrl.FilterRule{}
	for _, s := range srcs {
		r.SrcIPs = append(r.SrcIPs, addrStrings(s)...)
	}
	slices.SortFunc(r.SrcIPs, func(a, b string) int {
		return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b))
	})
	for _, ip := range addrStrings(dst) {
		r.DstPorts = append(r.DstPorts, ctrl.NetPortRange{IP: ip, Ports: ctrl.PortRange{First: port, Last: port}})
	}
	return []ctrl.FilterRule{r}
}

const policyA = `{
	// alice's devices may reach the servers' port 8080; nothing else.
	"tagOwners": {"tag:server": ["alice@example.com"]},
	"acls": [
		{"action": "accept", "src": ["alice@example.com"], "dst": ["tag:server:8080"]},
	],
	"tests": [
		{"src": "alice@example.com", "accept": ["tag:server:8080"], "deny": ["tag:server:9090"]},
	],
}`

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPolicyMapsAndDeltas drives the mapper's policy path end to end:
// full maps list only visible peers and carry the node's own filter; node
// changes reach only the sessions that see the node; policy and node
// changes send filters and visibility changes to exactly the sessions
// they affect; going back to allow-all restores everyone.
func TestPolicyMapsAndDeltas(t *testing.T) {
	r := newPolRig(t, Config{})
	r.setPolicy(policyA)
	a := r.mustJoin("a", "alice@example.com")
	srv := r.mustJoin("srv", "alice@example.com", "tag:server")
	b := r.mustJoin("b", "bob@example.com")
	r.sync(a, srv, b)

	// Full maps (a re-opened poll of each node gets one).
	check := func(n *node, peers []ctrl.NodeID, filter []ctrl.FilterRule) {
		t.Helper()
		if diff := cmp.Diff(peers, peerIDs(n.s)); diff != "" {
			t.Errorf("node %d peers (-want +got):\n%s", n.id, diff)
		}
		if diff := cmp.Diff(filter, n.s.PacketFilter()); diff != "" {
			t.Errorf("node %d filter (-want +got):\n%s", n.id, diff)
		}
	}
	check(a, ids(srv), []ctrl.FilterRule{})
	check(srv, ids(a), portRule(srv, 8080, a))
	check(b, nil, []ctrl.FilterRule{})
	if b.first.PacketFilter == nil || len(b.first.PacketFilter) != 0 || len(b.first.Peers) != 0 {
		t.Errorf("b's full map: filter %v, %d peers; want an empty filter and no peers", b.first.PacketFilter, len(b.first.Peers))
	}

	// An endpoint change of a reaches srv only.
	ep := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.9:41641")}
	if err := a.c.LiteUpdate(context.Background(), ctrl.MapRequest{Endpoints: ep, Hostinfo: &ctrl.Hostinfo{Hostname: "a"}}); err != nil {
		t.Fatal(err)
	}
	fs := r.sync(a, srv, b)
	if p := srv.s.Peer(a.id); p == nil || !slices.Equal(p.Endpoints, ep) {
		t.Errorf("srv's view of a after the endpoint change: %+v", p)
	}
	if !quiet(fs[2]) {
		t.Errorf("b, which cannot see a, got frames: %+v", fs[2])
	}

	// Policy change: bob may now reach the servers' port 22.
	res := r.setPolicy(strings.Replace(policyA, `"acls": [`,
		`"acls": [{"action": "accept", "src": ["bob@example.com"], "dst": ["tag:server:22"]},`, 1))
	if diff := cmp.Diff([]int64{int64(srv.id), int64(b.id)}, res.Affected); diff != "" {
		t.Errorf("affected nodes (-want +got):\n%s", diff)
	}
	fs = r.sync(a, srv, b)
	if !quiet(fs[0]) {
		t.Errorf("a, unaffected, got frames: %+v", fs[0])
	}
	check(b, ids(srv), []ctrl.FilterRule{})
	wantSrv := append(portRule(srv, 22, b), portRule(srv, 8080, a)...)
	check(srv, ids(a, b), wantSrv)

	// A new node of alice's: srv sees it and its filter grows; b does not.
	a2 := r.mustJoin("a2", "alice@example.com")
	fs = r.sync(a, srv, b, a2)
	check(a2, ids(srv), []ctrl.FilterRule{})
	check(srv, ids(a, b, a2), append(portRule(srv, 22, b), portRule(srv, 8080, a, a2)...))
	if !quiet(fs[2]) {
		t.Errorf("b got frames for a2: %+v", fs[2])
	}

	// Deleting it takes it out again.
	if err := r.st.Delete(context.Background(), int64(a2.id)); err != nil {
		t.Fatal(err)
	}
	r.sync(srv)
	check(srv, ids(a, b), wantSrv)

	// Retagging srv as bob's plain device: it drops out of a's map.
	if _, err := r.st.SetTags(context.Background(), int64(srv.id), nil); err != nil {
		t.Fatal(err)
	}
	r.sync(a, srv, b)
	check(a, nil, []ctrl.FilterRule{})
	if _, err := r.st.SetTags(context.Background(), int64(srv.id), []string{"tag:server"}); err != nil {
		t.Fatal(err)
	}
	r.sync(a, srv, b)
	check(a, ids(srv), []ctrl.FilterRule{})

	// Back to allow-all (a policy without acls): everyone sees everyone.
	r.setPolicy(`{"tagOwners": {"tag:server": ["alice@example.com"]}}`)
	r.sync(a, srv, b)
	check(a, ids(srv, b), ctrl.AllowAll())
	check(b, ids(a, srv), ctrl.AllowAll())
	check(srv, ids(a, b), ctrl.AllowAll())

	// And a restrictive one again from allow-all.
	r.setPolicy(policyA)
	r.sync(a, srv, b)
	check(a, ids(srv), []ctrl.FilterRule{})
	check(b, nil, []ctrl.FilterRule{})
	check(srv, ids(a), portRule(srv, 8080, a))
}

// TestPolicyRejectedKeepsOld: an invalid policy (syntax, unknown group,
// undefined tag, bad port range, failing test) is refused with line:column
// messages and the previous policy stays in force.
func TestPolicyRejectedKeepsOld(t *testing.T) {
	r := newPolRig(t, Config{})
	r.setPolicy(policyA)
	for _, tc := range []struct{ name, text, want string }{
		{"syntax", "{\n\t\"acls\": [\n}", "3:1: syntax error"},
		{"unknown group", `{"acls": [{"action": "accept", "src": ["group:nope"], "dst": ["*:*"]}]}`, `1:40: group "group:nope" is not defined`},
		{"tag not owned", "{\n\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"tag:web:80\"]}]}", `2:53: tag "tag:web" is not defined in "tagOwners"`},
		{"bad port range", `{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:90-80"]}]}`, "1:54:"},
		{"failing test", "{\"acls\": [],\n\"tests\": [{\"src\": \"alice@example.com\", \"accept\": [\"1.2.3.4:80\"]}]}", "2:51: test failed"},
	} {
		_, err := r.st.SetPolicy(context.Background(), []byte(tc.text), state.PolicyOrigin{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	if got := r.st.Policy().Text; got != policyA {
		t.Errorf("active policy changed to %q", got)
	}
	hist, err := r.st.PolicyHistory(context.Background())
	if err != nil || len(hist) != 1 {
		t.Errorf("history: %d versions, %v; want only the one valid policy", len(hist), err)
	}
}

// TestPolicyTagsAndAutoApprove: a node may take only the tags tagOwners
// grants its key's user, whether from the key or --advertise-tags, and
// autoApprovers approve the routes it advertises.
func TestPolicyTagsAndAutoApprove(t *testing.T) {
	r := newPolRig(t, Config{})
	if _, err := r.join("w", "alice@example.com", nil, &ctrl.Hostinfo{RequestTags: []string{"tag:server"}}); err == nil || !strings.Contains(err.Error(), "no policy grants them") {
		t.Errorf("--advertise-tags without a policy: %v", err)
	}
	if _, err := r.join("k", "bob@example.com", []string{"tag:server"}, nil); err != nil {
		t.Errorf("a tagged key without a policy (admin-made, accepted as before): %v", err)
	}
	r.setPolicy(`{
		"tagOwners": {"tag:server": ["alice@example.com"], "tag:router": ["alice@example.com"]},
		"autoApprovers": {"routes": {"10.0.0.0/8": ["tag:router"]}, "exitNode": ["bob@example.com"]},
		"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}],
	}`)
	if _, err := r.join("x", "bob@example.com", []string{"tag:server"}, nil); err == nil || !strings.Contains(err.Error(), `"tag:server" is not owned by "bob@example.com"`) {
		t.Errorf("bob's key with tag:server: %v", err)
	}
	if _, err := r.join("y", "alice@example.com", nil, &ctrl.Hostinfo{RequestTags: []string{"tag:nope"}}); err == nil || !strings.Contains(err.Error(), `"tag:nope" is not defined in tagOwners`) {
		t.Errorf("--advertise-tags tag:nope: %v", err)
	}
	routes := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("192.168.0.0/24")}
	rt, err := r.join("rt", "alice@example.com", nil, &ctrl.Hostinfo{RequestTags: []string{"tag:router"}, RoutableIPs: routes})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := r.st.Node(int64(rt.id))
	if !slices.Equal(n.Tags, []string{"tag:router"}) || !slices.Equal(n.ApprovedRoutes, routes[:1]) {
		t.Errorf("router: tags %v, approved %v; want [tag:router] and only 10.1.0.0/24", n.Tags, n.ApprovedRoutes)
	}
	exit := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	ex, err := r.join("ex", "bob@example.com", nil, &ctrl.Hostinfo{RoutableIPs: exit})
	if err != nil {
		t.Fatal(err)
	}
	n, _ = r.st.Node(int64(ex.id))
	if !slices.Equal(n.ApprovedRoutes, exit) {
		t.Errorf("exit node approved %v, want %v", n.ApprovedRoutes, exit)
	}
	waitUntil(t, "rt sees the exit node's routes", func() bool {
		p := rt.s.Peer(ex.id)
		return p != nil && slices.Contains(p.AllowedIPs, exit[0])
	})
}

// TestPolicySurvivesRestart: the stored policy is active again after a
// restart on the same store, and new sessions get restricted maps at once.
func TestPolicySurvivesRestart(t *testing.T) {
	r := newPolRig(t, Config{})
	a := r.mustJoin("a", "alice@example.com")
	r.mustJoin("b", "bob@example.com")
	r.setPolicy(policyA)
	s2, err := New(context.Background(), Config{Store: r.srv.store, StateDir: t.TempDir(), DisableDERP: true, ServerURL: r.url})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.batcher.Close()
	if info := s2.State().Policy(); info.Text != policyA || info.Version != 1 {
		t.Fatalf("policy after restart: %+v", info)
	}
	var buf strings.Builder
	if err := s2.batcher.WriteFullMap(context.Background(), int64(a.id), false, &buf); err != nil {
		t.Fatal(err)
	}
	if m := buf.String(); !strings.Contains(m, `"PacketFilter":[]`) || strings.Contains(m, `"Peers":`) {
		t.Errorf("a's map after restart should have an empty filter and no peers:\n...%s", m[max(0, len(m)-300):])
	}
}
