package policy

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/wire/ctrl"
)

const header = `{
	"groups": {"group:admins": ["alice@example.com"]},
	"hosts": {"internal": "10.0.0.0/8", "web": "100.64.0.4"},
	"tagOwners": {
		"tag:server": ["alice@example.com"],
		"tag:router": ["group:admins"],
		"tag:exit":   ["alice@example.com"],
		"tag:client": ["alice@example.com"],
	},
`

func ips(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func pfxs(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// testNodes: two of alice's devices, one of bob's, and tagged server,
// subnet router, exit node and client.
func testNodes() []Node {
	return []Node{
		{ID: 1, User: "alice@example.com", IPs: ips("100.64.0.1", "fd7a:115c:a1e0::1")},
		{ID: 2, User: "alice@example.com", IPs: ips("100.64.0.2")},
		{ID: 3, User: "bob@example.com", IPs: ips("100.64.0.3")},
		{ID: 4, Tags: []string{"tag:server"}, IPs: ips("100.64.0.4")},
		{ID: 5, Tags: []string{"tag:router"}, IPs: ips("100.64.0.5"), Routes: pfxs("10.33.0.0/16")},
		{ID: 6, Tags: []string{"tag:exit"}, IPs: ips("100.64.0.6"), Routes: pfxs("0.0.0.0/0", "::/0")},
		{ID: 7, Tags: []string{"tag:client"}, IPs: ips("100.64.0.7")},
	}
}

func dp(ip string, first, last uint16) ctrl.NetPortRange {
	return ctrl.NetPortRange{IP: ip, Ports: ctrl.PortRange{First: first, Last: last}}
}

func anyPort(ip string) ctrl.NetPortRange { return dp(ip, 0, 65535) }

func mustCompile(t testing.TB, src string, nodes []Node) *Compiled {
	t.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	c, err := p.Compile(nodes)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return c
}

func TestCompile(t *testing.T) {
	members := []string{"100.64.0.1-100.64.0.3", "fd7a:115c:a1e0::1"}
	tests := []struct {
		name    string
		acls    string
		filters map[int64][]ctrl.FilterRule // nodes not listed must have empty filters
		peers   map[int64][]int64           // nodes not listed must have no peers
	}{
		{
			name: "member to everything",
			acls: `[{"action": "accept", "src": ["autogroup:member"], "dst": ["*:*"]}]`,
			filters: func() map[int64][]ctrl.FilterRule {
				m := map[int64][]ctrl.FilterRule{}
				for id := int64(1); id <= 7; id++ {
					m[id] = []ctrl.FilterRule{{SrcIPs: members, DstPorts: []ctrl.NetPortRange{anyPort("*")}}}
				}
				return m
			}(),
			peers: map[int64][]int64{
				1: {2, 3, 4, 5, 6, 7}, 2: {1, 3, 4, 5, 6, 7}, 3: {1, 2, 4, 5, 6, 7},
				4: {1, 2, 3}, 5: {1, 2, 3}, 6: {1, 2, 3}, 7: {1, 2, 3},
			},
		},
		{
			name: "tag to tag with merged port lists",
			acls: `[
				{"action": "accept", "src": ["tag:client"], "dst": ["tag:server:22"]},
				{"action": "accept", "src": ["tag:client"], "dst": ["tag:server:80,443", "web:8000-8080"]},
			]`,
			filters: map[int64][]ctrl.FilterRule{
				4: {{SrcIPs: []string{"100.64.0.7"}, DstPorts: []ctrl.NetPortRange{
					dp("100.64.0.4", 22, 22), dp("100.64.0.4", 80, 80), dp("100.64.0.4", 443, 443),
					dp("100.64.0.4", 8000, 8080),
				}}},
			},
			peers: map[int64][]int64{4: {7}, 7: {4}},
		},
		{
			name: "user and group sources, proto udp",
			acls: `[{"action": "accept", "proto": "udp", "src": ["group:admins", "bob@example.com"], "dst": ["tag:server:53"]}]`,
			filters: map[int64][]ctrl.FilterRule{
				4: {{SrcIPs: members, DstPorts: []ctrl.NetPortRange{dp("100.64.0.4", 53, 53)}, IPProto: []int{ctrl.ProtoUDP}}},
			},
			peers: map[int64][]int64{1: {4}, 2: {4}, 3: {4}, 4: {1, 2, 3}},
		},
		{
			name: "numeric proto without ports",
			acls: `[{"action": "accept", "proto": "47", "src": ["tag:router"], "dst": ["tag:server:*"]}]`,
			filters: map[int64][]ctrl.FilterRule{
				4: {{SrcIPs: []string{"100.64.0.5"}, DstPorts: []ctrl.NetPortRange{anyPort("100.64.0.4")}, IPProto: []int{ctrl.ProtoGRE}}},
			},
			peers: map[int64][]int64{4: {5}, 5: {4}},
		},
		{
			name: "autogroup:self",
			acls: `[{"action": "accept", "src": ["*"], "dst": ["autogroup:self:*"]}]`,
			filters: map[int64][]ctrl.FilterRule{
				1: {{SrcIPs: []string{"100.64.0.1-100.64.0.2", "fd7a:115c:a1e0::1"}, DstPorts: []ctrl.NetPortRange{anyPort("100.64.0.1"), anyPort("fd7a:115c:a1e0::1")}}},
				2: {{SrcIPs: []string{"100.64.0.1-100.64.0.2", "fd7a:115c:a1e0::1"}, DstPorts: []ctrl.NetPortRange{anyPort("100.64.0.2")}}},
				3: {{SrcIPs: []string{"100.64.0.3"}, DstPorts: []ctrl.NetPortRange{anyPort("100.64.0.3")}}},
			},
			peers: map[int64][]int64{1: {2}, 2: {1}},
		},
		{
			name: "subnet route by CIDR and host",
			acls: `[
				{"action": "accept", "src": ["bob@example.com"], "dst": ["internal:22", "192.168.0.0/16:80"]},
			]`,
			filters: map[int64][]ctrl.FilterRule{
				5: {{SrcIPs: []string{"100.64.0.3"}, DstPorts: []ctrl.NetPortRange{dp("10.0.0.0/8", 22, 22)}}},
			},
			peers: map[int64][]int64{3: {5}, 5: {3}},
		},
		{
			name: "source CIDR covering a subnet router's routes makes it a peer",
			acls: `[{"action": "accept", "src": ["internal"], "dst": ["tag:server:22"]}]`,
			filters: map[int64][]ctrl.FilterRule{
				4: {{SrcIPs: []string{"10.0.0.0/8"}, DstPorts: []ctrl.NetPortRange{dp("100.64.0.4", 22, 22)}}},
			},
			peers: map[int64][]int64{4: {5}, 5: {4}},
		},
		{
			name: "exit node with autogroup:internet",
			acls: `[{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:internet:443"]}]`,
			filters: map[int64][]ctrl.FilterRule{
				6: {{SrcIPs: members, DstPorts: func() []ctrl.NetPortRange {
					var out []ctrl.NetPortRange
					for _, p := range internetPrefixes() {
						out = append(out, dp(p.String(), 443, 443))
					}
					return out
				}()}},
			},
			peers: map[int64][]int64{1: {6}, 2: {6}, 3: {6}, 6: {1, 2, 3}},
		},
		{
			name: "public CIDR reached through the exit node",
			acls: `[{"action": "accept", "src": ["tag:client"], "dst": ["8.8.8.8:53"]}]`,
			filters: map[int64][]ctrl.FilterRule{
				6: {{SrcIPs: []string{"100.64.0.7"}, DstPorts: []ctrl.NetPortRange{dp("8.8.8.8", 53, 53)}}},
			},
			peers: map[int64][]int64{6: {7}, 7: {6}},
		},
		{
			name:  "empty acls deny everything",
			acls:  `[]`,
			peers: map[int64][]int64{},
		},
		{
			name: "tagged devices are not their creator's",
			acls: `[{"action": "accept", "src": ["alice@example.com"], "dst": ["autogroup:tagged:22"]}]`,
			filters: func() map[int64][]ctrl.FilterRule {
				m := map[int64][]ctrl.FilterRule{}
				for id := int64(4); id <= 7; id++ {
					ip := netip.AddrFrom4([4]byte{100, 64, 0, byte(id)}).String()
					m[id] = []ctrl.FilterRule{{SrcIPs: []string{"100.64.0.1-100.64.0.2", "fd7a:115c:a1e0::1"}, DstPorts: []ctrl.NetPortRange{dp(ip, 22, 22)}}}
				}
				return m
			}(),
			peers: map[int64][]int64{1: {4, 5, 6, 7}, 2: {4, 5, 6, 7}, 4: {1, 2}, 5: {1, 2}, 6: {1, 2}, 7: {1, 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustCompile(t, header+`"acls": `+tt.acls+"}", testNodes())
			for _, n := range testNodes() {
				want := tt.filters[n.ID]
				if want == nil {
					want = []ctrl.FilterRule{}
				}
				if diff := cmp.Diff(want, c.FilterFor(n.ID)); diff != "" {
					t.Errorf("FilterFor(%d) (-want +got):\n%s", n.ID, diff)
				}
				if diff := cmp.Diff(tt.peers[n.ID], c.PeersOf(n.ID)); diff != "" {
					t.Errorf("PeersOf(%d) (-want +got):\n%s", n.ID, diff)
				}
				for _, m := range testNodes() {
					want := false
					for _, p := range tt.peers[n.ID] {
						want = want || p == m.ID
					}
					if got := c.Visible(n.ID, m.ID); got != want {
						t.Errorf("Visible(%d, %d) = %v, want %v", n.ID, m.ID, got, want)
					}
				}
			}
		})
	}
}

func TestAllowAll(t *testing.T) {
	for name, mk := range map[string]func() (*Compiled, error){
		"AllowAll":     func() (*Compiled, error) { return AllowAll(testNodes()) },
		"no acls":      func() (*Compiled, error) { return mustParse(t, `{}`).Compile(testNodes()) },
		"nil policy":   func() (*Compiled, error) { return (*Policy)(nil).Compile(testNodes()) },
		"comment only": func() (*Compiled, error) { return mustParse(t, "// nothing yet\n{}").Compile(testNodes()) },
	} {
		c, err := mk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, n := range testNodes() {
			if diff := cmp.Diff(ctrl.AllowAll(), c.FilterFor(n.ID)); diff != "" {
				t.Errorf("%s: FilterFor(%d) (-want +got):\n%s", name, n.ID, diff)
			}
			if got := len(c.PeersOf(n.ID)); got != 6 {
				t.Errorf("%s: node %d has %d peers, want 6", name, n.ID, got)
			}
		}
	}
}

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestCompileDuplicateID(t *testing.T) {
	_, err := AllowAll([]Node{{ID: 1}, {ID: 1}})
	if err == nil {
		t.Fatal("Compile accepted duplicate node IDs")
	}
}

func TestFilterForUnknownNode(t *testing.T) {
	c, _ := AllowAll(nil)
	if got := c.FilterFor(42); got != nil {
		t.Errorf("FilterFor(unknown) = %v, want nil", got)
	}
	if got := c.PeersOf(42); got != nil {
		t.Errorf("PeersOf(unknown) = %v, want nil", got)
	}
}

func fmtPorts(prs []ctrl.PortRange) string {
	s := "["
	for i, pr := range prs {
		if i > 0 {
			s += " "
		}
		s += "{" + itoa(int(pr.First)) + " " + itoa(int(pr.Last)) + "}"
	}
	return s + "]"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
