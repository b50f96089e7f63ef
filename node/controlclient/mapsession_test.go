package controlclient

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

func ptr[T any](v T) *T { return &v }

func node(id ctrl.NodeID, name string) *ctrl.Node {
	return &ctrl.Node{ID: id, StableID: ctrl.StableNodeID(name), Name: name + ".weft.test.", Key: key.NewNode().Public(),
		Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")}, Online: ptr(true), MachineAuthorized: true}
}

func rule(src string) ctrl.FilterRule {
	return ctrl.FilterRule{SrcIPs: []string{src}, DstPorts: []ctrl.NetPortRange{{IP: "*", Ports: ctrl.PortRangeAny}}}
}

func TestMapSessionDeltas(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ms := newMapSession(key.NewNode().Public(), func() time.Time { return now })
	self, p1, p2, p3 := node(1, "self"), node(2, "p2"), node(3, "p3"), node(4, "p4")

	if _, err := ms.apply(&ctrl.MapResponse{KeepAlive: true}); err != nil {
		t.Fatalf("keepalive before the first map: %v", err)
	}
	if _, err := ms.apply(&ctrl.MapResponse{Peers: []*ctrl.Node{p1}}); err != errNoNode {
		t.Fatalf("first map without Node: %v", err)
	}
	nm, err := ms.apply(&ctrl.MapResponse{
		Node: self, Peers: []*ctrl.Node{p2, p1}, Domain: "weft.test",
		PacketFilters: map[string][]ctrl.FilterRule{"base": {rule("100.64.0.2")}},
		DERPMap:       &ctrl.DERPMap{Regions: map[int]*ctrl.DERPRegion{900: {RegionID: 900, RegionCode: "w"}}},
		UserProfiles:  []ctrl.UserProfile{{ID: 1, LoginName: "alice"}},
	})
	if err != nil || nm == nil {
		t.Fatalf("full map: %v %v", nm, err)
	}
	if ids := peerIDs(nm.Peers); !cmp.Equal(ids, []ctrl.NodeID{2, 3}) {
		t.Errorf("peers = %v", ids)
	}

	steps := []struct {
		name  string
		in    *ctrl.MapResponse
		check func(t *testing.T, ms *mapSession)
	}{
		{"ControlTime only changes nothing", &ctrl.MapResponse{ControlTime: ptr(now)}, nil},
		{"PeersChanged upserts", &ctrl.MapResponse{PeersChanged: []*ctrl.Node{p3}}, func(t *testing.T, ms *mapSession) {
			if len(ms.peers) != 3 {
				t.Errorf("peers %d", len(ms.peers))
			}
		}},
		{"PeersRemoved", &ctrl.MapResponse{PeersRemoved: []ctrl.NodeID{3}}, func(t *testing.T, ms *mapSession) {
			if ms.peers[3] != nil {
				t.Error("3 not removed")
			}
		}},
		{"OnlineChange", &ctrl.MapResponse{OnlineChange: map[ctrl.NodeID]bool{2: false}}, func(t *testing.T, ms *mapSession) {
			if *ms.peers[2].Online {
				t.Error("2 still online")
			}
		}},
		{"PeerSeenChange", &ctrl.MapResponse{PeerSeenChange: map[ctrl.NodeID]bool{2: true}}, func(t *testing.T, ms *mapSession) {
			if ms.peers[2].LastSeen == nil || !ms.peers[2].LastSeen.Equal(now) {
				t.Errorf("LastSeen %v", ms.peers[2].LastSeen)
			}
		}},
		{"PeersChangedPatch", &ctrl.MapResponse{PeersChangedPatch: []*ctrl.PeerChange{
			{NodeID: 2, DERPRegion: 901, Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")}, Online: ptr(true), KeyExpiry: ptr(now)},
			{NodeID: 99, DERPRegion: 1}, // unknown: ignored
		}}, func(t *testing.T, ms *mapSession) {
			p := ms.peers[2]
			if p.HomeDERP != 901 || len(p.Endpoints) != 1 || !*p.Online || !p.KeyExpiry.Equal(now) {
				t.Errorf("patched = %+v", p)
			}
			if p2.HomeDERP != 0 {
				t.Error("patch modified the original node")
			}
		}},
		{"PacketFilter replaces base, PacketFilters adds chunks", &ctrl.MapResponse{
			PacketFilter:  []ctrl.FilterRule{rule("b")},
			PacketFilters: map[string][]ctrl.FilterRule{"z": {rule("z")}, "a": {rule("a")}},
		}, func(t *testing.T, ms *mapSession) {
			got := srcs(ms.netmap().PacketFilter)
			if want := []string{"a", "b", "z"}; !cmp.Equal(got, want) {
				t.Errorf("filter = %v, want %v", got, want)
			}
		}},
		{"PacketFilters null deletes a chunk", &ctrl.MapResponse{PacketFilters: map[string][]ctrl.FilterRule{"z": nil}}, func(t *testing.T, ms *mapSession) {
			if got := srcs(ms.netmap().PacketFilter); !cmp.Equal(got, []string{"a", "b"}) {
				t.Errorf("filter = %v", got)
			}
		}},
		{"PacketFilters * clears first", &ctrl.MapResponse{PacketFilters: map[string][]ctrl.FilterRule{"*": nil, "c": {rule("c")}}}, func(t *testing.T, ms *mapSession) {
			if got := srcs(ms.netmap().PacketFilter); !cmp.Equal(got, []string{"c"}) {
				t.Errorf("filter = %v", got)
			}
		}},
		{"empty PacketFilter denies all", &ctrl.MapResponse{PacketFilters: map[string][]ctrl.FilterRule{"*": nil}}, func(t *testing.T, ms *mapSession) {
			if f := ms.netmap().PacketFilter; f == nil || len(f) != 0 {
				t.Errorf("filter = %#v, want empty non-nil", f)
			}
		}},
		{"DERPMap with null Regions keeps regions", &ctrl.MapResponse{DERPMap: &ctrl.DERPMap{HomeParams: &ctrl.DERPHomeParams{}}}, func(t *testing.T, ms *mapSession) {
			if ms.derpMap.Regions[900] == nil {
				t.Error("regions lost")
			}
		}},
		{"UserProfiles are additive", &ctrl.MapResponse{UserProfiles: []ctrl.UserProfile{{ID: 2, LoginName: "bob"}}}, func(t *testing.T, ms *mapSession) {
			if len(ms.users) != 2 {
				t.Errorf("users = %v", ms.users)
			}
		}},
		{"Peers replaces the set and ignores other deltas", &ctrl.MapResponse{Peers: []*ctrl.Node{p3}, PeersRemoved: []ctrl.NodeID{4}}, func(t *testing.T, ms *mapSession) {
			if ids := peerIDs(ms.netmap().Peers); !cmp.Equal(ids, []ctrl.NodeID{4}) {
				t.Errorf("peers = %v", ids)
			}
		}},
		{"legacy DERP string", &ctrl.MapResponse{PeersChanged: []*ctrl.Node{{ID: 7, DERP: "127.3.3.40:903"}}}, func(t *testing.T, ms *mapSession) {
			if ms.peers[7].HomeDERP != 903 {
				t.Errorf("HomeDERP = %d", ms.peers[7].HomeDERP)
			}
		}},
		{"self Node replaces", &ctrl.MapResponse{Node: &ctrl.Node{ID: 1, Name: "renamed.other.test.", KeyExpiry: now}}, func(t *testing.T, ms *mapSession) {
			nm := ms.netmap()
			if nm.SelfNode.Name != "renamed.other.test." || !nm.Expiry.Equal(now) || nm.Domain != "weft.test" {
				t.Errorf("self = %+v domain %q", nm.SelfNode, nm.Domain)
			}
		}},
	}
	for _, s := range steps {
		nm, err := ms.apply(s.in)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.check == nil {
			if nm != nil {
				t.Errorf("%s: produced a netmap", s.name)
			}
			continue
		}
		if nm == nil {
			t.Errorf("%s: no netmap", s.name)
		}
		s.check(t, ms)
	}
}

func peerIDs(ps []*ctrl.Node) []ctrl.NodeID {
	var out []ctrl.NodeID
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func srcs(rs []ctrl.FilterRule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.SrcIPs...)
	}
	return out
}

func TestBackoffJitterAndCap(t *testing.T) {
	b := backoff{base: 250 * time.Millisecond, max: 30 * time.Second, rand: func() float64 { return 0.999 }}
	var last time.Duration
	for i := 0; i < 30; i++ {
		d := b.next()
		if d > 30*time.Second {
			t.Fatalf("step %d: %v exceeds the cap", i, d)
		}
		last = d
	}
	if last < 15*time.Second {
		t.Errorf("backoff stays at %v, want near the 30 s cap", last)
	}
	b.rand = func() float64 { return 0 }
	b.reset()
	if d := b.next(); d != 125*time.Millisecond {
		t.Errorf("first wait with zero jitter = %v", d)
	}
}
