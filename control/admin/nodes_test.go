package admin

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/control/state"
	"weft.dev/weft/wire/key"
)

func TestNodeList(t *testing.T) {
	f := newFixture(t, false)
	l := f.laptop
	want := Node{
		ID: l.ID, Name: "laptop", Hostname: "laptop", User: "alice", IPv4: l.IPv4, IPv6: l.IPv6,
		Online: true, LastSeen: t0, Tags: []string{}, Created: t0,
		AdvertisedRoutes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}, ApprovedRoutes: []netip.Prefix{},
		NodeKey: l.NodeKey.String(), MachineKey: l.MachineKey.String(),
	}
	var nodes []Node
	f.call(t, "GET", "/api/v1/nodes?user=alice", "", 200, &nodes)
	if d := diff([]Node{want}, nodes); d != "" {
		t.Errorf("alice's nodes (-want +got):\n%s", d)
	}
	f.call(t, "GET", "/api/v1/nodes", "", 200, &nodes)
	if len(nodes) != 2 || nodes[1].Name != "server" || nodes[1].User != "bob" {
		t.Errorf("all nodes = %+v, want laptop and server", nodes)
	}
	for _, ref := range []string{itoa(l.ID), "laptop"} {
		var n Node
		f.call(t, "GET", "/api/v1/nodes/"+ref, "", 200, &n)
		if d := diff(want, n); d != "" {
			t.Errorf("GET node %s (-want +got):\n%s", ref, d)
		}
	}
	runErrCases(t, f, []errCase{
		{"unknown node", "GET", "/api/v1/nodes/nope", "", 404, "weft-control nodes list"},
		{"unknown user", "GET", "/api/v1/nodes?user=zed", "", 404, `no user "zed"`},
	})
}

func TestNodeChanges(t *testing.T) {
	f := newFixture(t, false)
	laptop, server := itoa(f.laptop.ID), itoa(f.server.ID)

	var n Node
	f.call(t, "POST", "/api/v1/nodes/laptop/rename", `{"name":"work-laptop"}`, 200, &n)
	if got, ok := f.st.NodeByName("work-laptop"); n.Name != "work-laptop" || !ok || got.ID != f.laptop.ID {
		t.Errorf("after rename, answer %q, state has work-laptop: %v", n.Name, ok)
	}

	f.call(t, "POST", "/api/v1/nodes/"+laptop+"/ip", `{"ip":"100.64.9.9"}`, 200, &n)
	if want := netip.MustParseAddr("100.64.9.9"); n.IPv4 != want {
		t.Errorf("after set-ip, IPv4 = %v, want %v", n.IPv4, want)
	}

	f.call(t, "POST", "/api/v1/nodes/"+laptop+"/tags", `{"tags":["tag:b","tag:a","tag:b"]}`, 200, &n)
	if d := diff([]string{"tag:a", "tag:b"}, n.Tags); d != "" {
		t.Errorf("tags (-want +got):\n%s", d)
	}
	f.call(t, "POST", "/api/v1/nodes/"+laptop+"/tags", `{"tags":[]}`, 200, &n)
	if len(n.Tags) != 0 {
		t.Errorf("tags after clearing = %q", n.Tags)
	}

	f.clk.Advance(time.Minute)
	f.call(t, "POST", "/api/v1/nodes/"+server+"/expire", "", 200, &n)
	if !n.Expired || !n.Expiry.Equal(f.clk.Now()) {
		t.Errorf("after expire: expired=%v expiry=%v, want expired at %v", n.Expired, n.Expiry, f.clk.Now())
	}
	f.clk.Advance(time.Minute)
	f.call(t, "POST", "/api/v1/nodes/"+server+"/expire", "", 200, &n) // again: keeps the first expiry
	if !n.Expiry.Equal(f.clk.Now().Add(-time.Minute)) {
		t.Errorf("second expire moved expiry to %v", n.Expiry)
	}

	f.call(t, "DELETE", "/api/v1/nodes/server", "", 204, nil)
	if _, ok := f.st.Node(f.server.ID); ok {
		t.Error("server still exists after DELETE")
	}

	// A third node to collide with.
	bob, _ := f.st.UserByName("bob")
	other := f.mustNode(t, bob.ID, "desk")
	runErrCases(t, f, []errCase{
		{"old name gone", "POST", "/api/v1/nodes/laptop/rename", `{"name":"x"}`, 404, "no node"},
		{"rename conflict", "POST", "/api/v1/nodes/" + laptop + "/rename", `{"name":"desk"}`, 409, `"desk" is already used`},
		{"rename invalid", "POST", "/api/v1/nodes/" + laptop + "/rename", `{"name":"My Laptop"}`, 400, `e.g. "my-laptop"`},
		{"rename bad json", "POST", "/api/v1/nodes/" + laptop + "/rename", `{"nam":"x"}`, 400, `unknown field "nam"`},
		{"rename unknown node", "POST", "/api/v1/nodes/999/rename", `{"name":"x"}`, 404, `no node with ID or name "999"`},
		{"ip taken", "POST", "/api/v1/nodes/" + laptop + "/ip", `{"ip":"` + other.IPv4.String() + `"}`, 409, "already used by node \"desk\""},
		{"ip outside", "POST", "/api/v1/nodes/" + laptop + "/ip", `{"ip":"192.168.1.1"}`, 400, "outside the tailnet prefix"},
		{"ip invalid", "POST", "/api/v1/nodes/" + laptop + "/ip", `{"ip":"nope"}`, 400, "invalid IP address"},
		{"ip reserved", "POST", "/api/v1/nodes/" + laptop + "/ip", `{"ip":"100.64.0.0"}`, 400, "reserved"},
		{"tags invalid", "POST", "/api/v1/nodes/" + laptop + "/tags", `{"tags":["web"]}`, 400, "tags look like tag:server"},
		{"expire unknown", "POST", "/api/v1/nodes/nope/expire", "", 404, "no node"},
		{"delete unknown", "DELETE", "/api/v1/nodes/nope", "", 404, "no node"},
	})
}

func TestPendingAndRegister(t *testing.T) {
	f := newFixture(t, false)
	nk := key.NewNode().Public()
	id := f.st.StartLogin(state.RegisterParams{MachineKey: key.NewMachine().Public(), NodeKey: nk, Hostname: "phone"})
	var pending []PendingLogin
	f.call(t, "GET", "/api/v1/nodes/pending", "", 200, &pending)
	want := []PendingLogin{{ID: id, Hostname: "phone", NodeKey: nk.String(), Created: t0, Expires: t0.Add(state.LoginTTL)}}
	if d := diff(want, pending); d != "" {
		t.Errorf("pending (-want +got):\n%s", d)
	}
	runErrCases(t, f, []errCase{
		{"unknown user", "POST", "/api/v1/nodes/register", `{"id":"` + id + `","user":"zed"}`, 404, "weft-control users create zed"},
		{"unknown login", "POST", "/api/v1/nodes/register", `{"id":"abc","user":"alice"}`, 404, "weft-control nodes pending"},
		{"missing user", "POST", "/api/v1/nodes/register", `{"id":"abc"}`, 400, `need both "id"`},
	})
	var n Node
	// The URL the client printed works as well as the bare ID.
	f.call(t, "POST", "/api/v1/nodes/register", `{"id":"https://ctl.example/register/`+id+`","user":"alice"}`, 200, &n)
	if n.Name != "phone" || n.User != "alice" || n.NodeKey != nk.String() {
		t.Errorf("registered node = %+v", n)
	}
	f.call(t, "GET", "/api/v1/nodes/pending", "", 200, &pending)
	if len(pending) != 0 {
		t.Errorf("pending after approval = %+v", pending)
	}
}

func TestRoutes(t *testing.T) {
	f := newFixture(t, false)
	pfx := netip.MustParsePrefix
	var res RoutesResult
	f.call(t, "POST", "/api/v1/nodes/laptop/routes/approve", `{"routes":["10.1.0.0/24","10.2.0.0/16"]}`, 200, &res)
	want := RoutesResult{
		NodeRoutes: NodeRoutes{
			NodeID: f.laptop.ID, Node: "laptop",
			Advertised: []netip.Prefix{pfx("10.1.0.0/24")},
			Approved:   []netip.Prefix{pfx("10.1.0.0/24"), pfx("10.2.0.0/16")},
			Primary:    []netip.Prefix{pfx("10.1.0.0/24")},
		},
		NotAdvertised: []netip.Prefix{pfx("10.2.0.0/16")},
	}
	if !strings.Contains(res.Warning, "does not advertise 10.2.0.0/16") {
		t.Errorf("warning %q does not flag 10.2.0.0/16", res.Warning)
	}
	res.Warning = ""
	if d := diff(want, res); d != "" {
		t.Errorf("approve (-want +got):\n%s", d)
	}

	var list []NodeRoutes
	f.call(t, "GET", "/api/v1/routes", "", 200, &list)
	if d := diff([]NodeRoutes{want.NodeRoutes}, list); d != "" {
		t.Errorf("routes (-want +got):\n%s", d)
	}

	// Exit routes go together.
	f.call(t, "POST", "/api/v1/nodes/laptop/routes/approve", `{"routes":["0.0.0.0/0"]}`, 200, &res)
	if d := diff([]netip.Prefix{pfx("0.0.0.0/0"), pfx("10.1.0.0/24"), pfx("10.2.0.0/16"), pfx("::/0")}, res.Approved); d != "" {
		t.Errorf("approved after exit (-want +got):\n%s", d)
	}
	res = RoutesResult{}
	f.call(t, "POST", "/api/v1/nodes/laptop/routes/unapprove", `{"routes":["::/0","10.2.0.0/16"]}`, 200, &res)
	if d := diff([]netip.Prefix{pfx("10.1.0.0/24")}, res.Approved); d != "" {
		t.Errorf("approved after unapprove (-want +got):\n%s", d)
	}
	if res.Warning != "" || res.NotAdvertised != nil {
		t.Errorf("unapprove flagged %q %v", res.Warning, res.NotAdvertised)
	}
	if n, _ := f.st.Node(f.laptop.ID); diff([]netip.Prefix{pfx("10.1.0.0/24")}, n.ApprovedRoutes) != "" {
		t.Errorf("state approved routes = %v", n.ApprovedRoutes)
	}
	runErrCases(t, f, []errCase{
		{"bad prefix", "POST", "/api/v1/nodes/laptop/routes/approve", `{"routes":["10.0.0.0"]}`, 400, "use CIDR notation"},
		{"host bits", "POST", "/api/v1/nodes/laptop/routes/approve", `{"routes":["10.0.0.1/24"]}`, 400, "use 10.0.0.0/24"},
		{"no routes", "POST", "/api/v1/nodes/laptop/routes/approve", `{"routes":[]}`, 400, "no routes given"},
		{"unknown node", "POST", "/api/v1/nodes/nope/routes/unapprove", `{"routes":["10.0.0.0/8"]}`, 404, "no node"},
	})
}
