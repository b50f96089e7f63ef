package api

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// TestApprovedRoutesReachPeers: advertised routes are stored; approving one
// puts it in peers' AllowedIPs and PrimaryRoutes; unapproving takes it out.
func TestApprovedRoutesReachPeers(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	a := r.client("router")
	sa := r.stream(a)
	b := r.client("viewer")
	sb := r.stream(b)
	route := netip.MustParsePrefix("10.20.0.0/16")
	hi := &ctrl.Hostinfo{Hostname: "router", RoutableIPs: []netip.Prefix{route}}
	if err := a.LiteUpdate(ctx, ctrl.MapRequest{Hostinfo: hi}); err != nil {
		t.Fatal(err)
	}
	id := int64(sa.Self().ID)
	waitFor(t, "advertised route stored", func() bool {
		n, _ := r.st.Node(id)
		return slices.Contains(n.AdvertisedRoutes, route)
	})
	if p := sb.Peer(sa.Self().ID); p == nil || slices.Contains(p.AllowedIPs, route) {
		t.Fatalf("unapproved route already in AllowedIPs: %+v", p)
	}
	if _, err := r.st.SetApprovedRoutes(ctx, id, []netip.Prefix{route}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "approved route in peer's AllowedIPs and PrimaryRoutes", func() bool {
		p := sb.Peer(sa.Self().ID)
		return p != nil && slices.Contains(p.AllowedIPs, route) && slices.Contains(p.PrimaryRoutes, route)
	})
	if _, err := r.st.SetApprovedRoutes(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "unapproved route gone", func() bool {
		p := sb.Peer(sa.Self().ID)
		return p != nil && !slices.Contains(p.AllowedIPs, route) && len(p.PrimaryRoutes) == 0
	})
}

// TestCustomDNSRecordsReachNodes: records added on the server arrive in
// every node's DNS config (as a delta to running sessions and in new full
// maps), answered by MagicDNS even outside the MagicDNS domain.
func TestCustomDNSRecordsReachNodes(t *testing.T) {
	r := newRig(t)
	s := r.stream(r.client("dnsnode"))
	want := ctrl.DNSRecord{Name: "grafana.corp.example", Type: "A", Value: "100.64.9.9"}
	check := func(c *ctrl.DNSConfig) bool {
		if c == nil || !slices.Contains(c.ExtraRecords, want) {
			return false
		}
		_, routed := c.Routes["grafana.corp.example."]
		return routed && c.Proxied && slices.Contains(c.Domains, "weft.test")
	}
	if _, err := r.st.AddDNSRecord(context.Background(), "Grafana.Corp.Example.", "", "100.64.9.9"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "record delta on a running session", func() bool { return check(s.DNS()) })
	if late := r.stream(r.client("late")); !check(late.DNS()) {
		t.Fatalf("full map DNS config = %+v", late.DNS())
	}
	recs := r.st.DNSRecords()
	if err := r.st.DeleteDNSRecord(context.Background(), recs[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "record removed", func() bool { c := s.DNS(); return c != nil && len(c.ExtraRecords) == 0 })
	for _, bad := range [][3]string{{"x.example", "A", "fd00::1"}, {"x.example", "MX", "1.2.3.4"}, {"", "A", "1.2.3.4"}, {"x.example", "A", "nope"}} {
		if _, err := r.st.AddDNSRecord(context.Background(), bad[0], bad[1], bad[2]); err == nil {
			t.Errorf("AddDNSRecord(%q) accepted", bad)
		}
	}
}

// TestNodeKeyExpiry: with --node-key-expiry, new keys carry an expiry; an
// expired node must re-authenticate, and rotation gives a fresh lifetime.
func TestNodeKeyExpiry(t *testing.T) {
	r := newRigWith(t, Config{NodeKeyExpiry: time.Hour})
	ctx := context.Background()
	c := r.client("exp")
	s := r.stream(c)
	exp := s.Self().KeyExpiry
	if d := time.Until(exp); d < 59*time.Minute || d > time.Hour+time.Minute {
		t.Fatalf("KeyExpiry %v is not about an hour away", exp)
	}
	n, _ := r.st.NodeByKey(c.Node.Public())
	if _, err := r.st.Expire(ctx, n.ID, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	// Restart with the expired key: told it expired.
	res, err := c.Register(ctx, ctrl.RegisterRequest{Hostinfo: &ctrl.Hostinfo{Hostname: "exp"}})
	if err != nil || !res.NodeKeyExpired {
		t.Fatalf("restart with expired key: %+v %v", res, err)
	}
	// Rotation without credentials needs an interactive login.
	old := c.Node.Public()
	c.Node = key.NewNode()
	res, err = c.Register(ctx, ctrl.RegisterRequest{OldNodeKey: old, Hostinfo: &ctrl.Hostinfo{Hostname: "exp"}})
	if err != nil || res.AuthURL == "" {
		t.Fatalf("rotation of an expired node without a key: %+v %v", res, err)
	}
	// With a key it rotates, keeping the node, with a fresh lifetime.
	res, err = c.Register(ctx, ctrl.RegisterRequest{OldNodeKey: old, Auth: &ctrl.RegisterResponseAuth{AuthKey: r.authK}, Hostinfo: &ctrl.Hostinfo{Hostname: "exp"}})
	if err != nil || res.Error != "" || !res.MachineAuthorized {
		t.Fatalf("rotation with a key: %+v %v", res, err)
	}
	n2, ok := r.st.NodeByKey(c.Node.Public())
	if !ok || n2.ID != n.ID || time.Until(n2.Expiry) < 59*time.Minute {
		t.Fatalf("after rotation: %+v", n2)
	}
}
