package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/control/controltest"
	"weft.dev/weft/control/mapper"
	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

type rig struct {
	t     *testing.T
	st    *state.State
	url   string
	user  int64
	authK string
}

func newRig(t *testing.T) *rig { return newRigWith(t, Config{}) }

// newRigWith starts a server whose Config is base plus the rig's fields.
func newRigWith(t *testing.T, base Config) *rig {
	t.Helper()
	ctx := context.Background()
	b, err := mapper.New(mapper.Config{Domain: "weft.test", DNS: mapper.DNSSettings{MagicDNS: true}, Window: 5 * time.Millisecond, OfflineGrace: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.New(ctx, state.Config{Store: store.NewMemory(), OnChange: b.OnChange})
	if err != nil {
		t.Fatal(err)
	}
	b.Start(st)
	srv := httptest.NewUnstartedServer(nil)
	base.ServerURL, base.NoiseKey, base.State, base.Batcher = "http://"+srv.Listener.Addr().String(), key.NewMachine(), st, b
	s, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(func() { b.Close(); s.Close(); srv.CloseClientConnections(); srv.Close() })
	u, err := st.CreateUser(ctx, "alice", "Alice", "")
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := st.CreatePreAuthKey(ctx, state.NewPreAuthKeyParams{UserID: u.ID, Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, st: st, url: srv.URL, user: u.ID, authK: k}
}

func (r *rig) client(host string) *controltest.Client {
	r.t.Helper()
	ctx := context.Background()
	c, err := controltest.Dial(ctx, r.url, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	res, err := c.Register(ctx, ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: r.authK}, Hostinfo: &ctrl.Hostinfo{Hostname: host, OS: "linux"}})
	if err != nil {
		r.t.Fatal(err)
	}
	if res.Error != "" || !res.MachineAuthorized {
		r.t.Fatalf("register %s: %+v", host, res)
	}
	return c
}

func (r *rig) stream(c *controltest.Client) *controltest.Stream {
	r.t.Helper()
	s, err := c.Stream(context.Background(), ctrl.MapRequest{Hostinfo: &ctrl.Hostinfo{Hostname: "x"}})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { s.Close() })
	first, err := s.Next()
	if err != nil {
		r.t.Fatal(err)
	}
	if first.Node == nil || !first.Node.MachineAuthorized || len(first.Node.Addresses) != 2 {
		r.t.Fatalf("first frame self node = %+v", first.Node)
	}
	go func() {
		for {
			if _, err := s.Next(); err != nil {
				return
			}
		}
	}()
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTwoNodesSeeEachOther(t *testing.T) {
	r := newRig(t)
	a := r.client("alpha")
	sa := r.stream(a)
	if n := sa.Self(); n.Name != "alpha.weft.test." || n.Addresses[0].String() != "100.64.0.1/32" {
		t.Fatalf("self = %s %v", n.Name, n.Addresses)
	}
	b := r.client("alpha") // name collision → alpha-1
	sb := r.stream(b)
	if n := sb.Self(); n.Name != "alpha-1.weft.test." {
		t.Fatalf("second self name = %s", n.Name)
	}
	if got := sb.NumPeers(); got != 1 {
		t.Fatalf("b's full map has %d peers", got)
	}
	waitFor(t, "a sees b online", func() bool {
		p := sa.Peer(sb.Self().ID)
		return p != nil && p.Online != nil && *p.Online
	})

	// Endpoint change reaches the peer as a patch.
	ep := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.7:41641")}
	if err := b.LiteUpdate(context.Background(), ctrl.MapRequest{Endpoints: ep, Hostinfo: &ctrl.Hostinfo{Hostname: "alpha", NetInfo: &ctrl.NetInfo{PreferredDERP: 900}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "endpoint patch", func() bool {
		p := sa.Peer(sb.Self().ID)
		return p != nil && len(p.Endpoints) == 1 && p.Endpoints[0] == ep[0] && p.HomeDERP == 900
	})

	// Rename shows as a whole-node change.
	ctx := context.Background()
	if _, err := r.st.Rename(ctx, int64(sb.Self().ID), "beta"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "rename", func() bool {
		p := sa.Peer(sb.Self().ID)
		return p != nil && p.Name == "beta.weft.test."
	})
	waitFor(t, "self rename", func() bool { return sb.Self().Name == "beta.weft.test." })

	// Delete removes the peer and expires the deleted node's own view.
	bid := sb.Self().ID
	if err := r.st.Delete(ctx, int64(bid)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "removal", func() bool { return sa.Peer(bid) == nil })
	waitFor(t, "deleted node expired", func() bool {
		s := sb.Self()
		return !s.KeyExpiry.IsZero() && s.KeyExpiry.Before(time.Now())
	})
}

func TestRegisterFlows(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c, err := controltest.Dial(ctx, r.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hi := &ctrl.Hostinfo{Hostname: "gamma"}

	for _, tc := range []struct{ key, want string }{
		{"nonsense", "invalid auth key"},
		{"weft-auth-000000000000-" + strings.Repeat("0", 48), "invalid auth key"},
	} {
		res, err := c.Register(ctx, ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: tc.key}, Hostinfo: hi})
		if err != nil || !strings.Contains(res.Error, tc.want) {
			t.Fatalf("key %q: %+v %v", tc.key, res, err)
		}
	}
	single, _, _ := r.st.CreatePreAuthKey(ctx, state.NewPreAuthKeyParams{UserID: r.user})
	if res, err := c.Register(ctx, ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: single}, Hostinfo: hi}); err != nil || res.Error != "" {
		t.Fatalf("single-use key: %+v %v", res, err)
	}
	c2, _ := controltest.Dial(ctx, r.url, nil)
	defer c2.Close()
	if res, err := c2.Register(ctx, ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: single}, Hostinfo: hi}); err != nil || !strings.Contains(res.Error, "already used") {
		t.Fatalf("reused single-use key: %+v %v", res, err)
	}
	expired, _, _ := r.st.CreatePreAuthKey(ctx, state.NewPreAuthKeyParams{UserID: r.user, Expiry: time.Nanosecond})
	time.Sleep(time.Millisecond)
	if res, err := c2.Register(ctx, ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: expired}, Hostinfo: hi}); err != nil || !strings.Contains(res.Error, "expired") {
		t.Fatalf("expired key: %+v %v", res, err)
	}

	// Restart: same node key, no auth.
	if res, err := c.Register(ctx, ctrl.RegisterRequest{Hostinfo: hi}); err != nil || res.Error != "" || !res.MachineAuthorized {
		t.Fatalf("restart: %+v %v", res, err)
	}
	n1, _ := r.st.NodeByKey(c.Node.Public())

	// Rotation keeps ID and addresses.
	old := c.Node.Public()
	c.Node = key.NewNode()
	if res, err := c.Register(ctx, ctrl.RegisterRequest{OldNodeKey: old, Hostinfo: hi}); err != nil || res.Error != "" {
		t.Fatalf("rotate: %+v %v", res, err)
	}
	n2, ok := r.st.NodeByKey(c.Node.Public())
	if !ok || n2.ID != n1.ID || n2.IPv4 != n1.IPv4 {
		t.Fatalf("rotation changed identity: %+v vs %+v", n2, n1)
	}

	// Logout expires the node.
	res, err := c.Register(ctx, ctrl.RegisterRequest{Expiry: time.Unix(123, 0), Hostinfo: hi})
	if err != nil || !res.NodeKeyExpired {
		t.Fatalf("logout: %+v %v", res, err)
	}
	if n, _ := r.st.NodeByKey(c.Node.Public()); !n.IsExpired(time.Now()) {
		t.Fatal("node not expired after logout")
	}
	// Re-login with a fresh key from the same machine reuses the node.
	c.Node = key.NewNode()
	if res, err := c.Register(ctx, ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: r.authK}, Hostinfo: hi}); err != nil || res.Error != "" {
		t.Fatalf("re-login: %+v %v", res, err)
	}
	if n3, _ := r.st.NodeByKey(c.Node.Public()); n3.ID != n1.ID || n3.IsExpired(time.Now()) {
		t.Fatalf("re-login made a new node or kept it expired: %+v", n3)
	}
}

func TestInteractiveLogin(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	c, err := controltest.Dial(ctx, r.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Register(ctx, ctrl.RegisterRequest{Hostinfo: &ctrl.Hostinfo{Hostname: "delta"}})
	if err != nil || !strings.HasPrefix(res.AuthURL, r.url+"/register/") {
		t.Fatalf("first register: %+v %v", res, err)
	}
	id := strings.TrimPrefix(res.AuthURL, r.url+"/register/")
	done := make(chan *ctrl.RegisterResponse, 1)
	go func() {
		res, err := c.Register(ctx, ctrl.RegisterRequest{Followup: res.AuthURL, Hostinfo: &ctrl.Hostinfo{Hostname: "delta"}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	waitFor(t, "pending login", func() bool { return len(r.st.PendingLogins()) == 1 })
	if _, err := r.st.ApproveLogin(ctx, id, "nobody"); err == nil {
		t.Fatal("approved for an unknown user")
	}
	if _, err := r.st.ApproveLogin(ctx, id, "alice"); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res == nil || !res.MachineAuthorized || res.Login.LoginName != "alice" {
			t.Fatalf("followup: %+v", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("followup did not complete")
	}
}

func TestOldClientRefused(t *testing.T) {
	r := newRig(t)
	res, err := http.Get(r.url + "/key?v=20")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("old capver /key status %d", res.StatusCode)
	}
}
