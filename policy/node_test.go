package policy

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValidTags(t *testing.T) {
	p := mustParse(t, `{
		"groups": {"group:ops": ["ops@example.com"]},
		"tagOwners": {
			"tag:server": ["alice@example.com", "group:ops"],
			"tag:db":     ["tag:server"],
			"tag:anyone": ["autogroup:member"],
			"tag:admin":  ["autogroup:admin"],
		},
	}`)
	tests := []struct {
		user      string
		requested []string
		want      []string
		wantErr   string
	}{
		{"alice@example.com", []string{"tag:server"}, []string{"tag:server"}, ""},
		{"ALICE@example.com", []string{"tag:server"}, []string{"tag:server"}, ""},
		{"ops@example.com", []string{"tag:server", "tag:server"}, []string{"tag:server"}, ""},
		{"alice@example.com", []string{"tag:db", "tag:server"}, []string{"tag:db", "tag:server"}, ""},
		{"bob@example.com", []string{"tag:anyone"}, []string{"tag:anyone"}, ""},
		{"alice@example.com", []string{"tag:db"}, nil,
			`tags refused: "tag:db" is not owned by "alice@example.com"; add the owner to tagOwners in the policy`},
		{"bob@example.com", []string{"tag:server", "tag:nope", "tag:anyone"}, []string{"tag:anyone"},
			`tags refused: "tag:server" is not owned by "bob@example.com", "tag:nope" is not defined in tagOwners; add the owner to tagOwners in the policy`},
		{"alice@example.com", []string{"tag:admin"}, nil,
			`tags refused: "tag:admin" is not owned by "alice@example.com"; add the owner to tagOwners in the policy`},
	}
	for _, tt := range tests {
		got, err := p.ValidTags(tt.user, tt.requested)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ValidTags(%q, %q) tags (-want +got):\n%s", tt.user, tt.requested, diff)
		}
		gotErr := ""
		if err != nil {
			gotErr = err.Error()
		}
		if gotErr != tt.wantErr {
			t.Errorf("ValidTags(%q, %q) error:\n got: %s\nwant: %s", tt.user, tt.requested, gotErr, tt.wantErr)
		}
	}
}

func TestAutoApprove(t *testing.T) {
	p := mustParse(t, `{
		"groups": {"group:net": ["carol@example.com"]},
		"tagOwners": {"tag:router": [], "tag:exit": []},
		"autoApprovers": {
			"routes": {
				"10.0.0.0/8":     ["tag:router"],
				"192.168.1.0/24": ["group:net"],
				"fd00::/8":       ["tag:router"],
			},
			"exitNode": ["tag:exit"],
		},
	}`)
	adv := pfxs("10.1.0.0/16", "10.0.0.0/8", "11.0.0.0/8", "192.168.1.0/24", "192.168.0.0/16", "fd00:1::/32", "0.0.0.0/0", "::/0")
	tests := []struct {
		name string
		node Node
		want []netip.Prefix
	}{
		{"router tag", Node{ID: 1, Tags: []string{"tag:router"}}, pfxs("10.1.0.0/16", "10.0.0.0/8", "fd00:1::/32")},
		{"group member", Node{ID: 2, User: "carol@example.com"}, pfxs("192.168.1.0/24")},
		{"exit tag", Node{ID: 3, Tags: []string{"tag:exit"}}, pfxs("0.0.0.0/0", "::/0")},
		{"nobody", Node{ID: 4, User: "dave@example.com"}, nil},
		{"tagged node loses its user", Node{ID: 5, User: "carol@example.com", Tags: []string{"tag:exit"}}, pfxs("0.0.0.0/0", "::/0")},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, p.AutoApprove(tt.node, adv), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("%s: AutoApprove (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestPolicyTests(t *testing.T) {
	src := header + `
	"acls": [
		{"action": "accept", "src": ["group:admins"], "dst": ["tag:server:22,80"]},
		{"action": "accept", "proto": "udp", "src": ["bob@example.com"], "dst": ["web:53"]},
		{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*", "autogroup:internet:443"]},
	],
	"tests": [
		{"src": "alice@example.com", "accept": ["tag:server:22", "web:80", "alice@example.com:9000", "8.8.8.8:443"], "deny": ["tag:server:443"]},
		{"src": "bob@example.com", "proto": "udp", "accept": ["web:53"], "deny": ["alice@example.com:22"]},
		{"src": "bob@example.com", "proto": "tcp", "accept": ["web:53"]},
		{"src": "tag:client", "accept": ["tag:server:22", "100.64.0.4:80"]},
		{"src": "100.64.0.1", "accept": ["tag:server:22"]},
	],
}`
	p := mustParse(t, src)
	// Without nodes, addresses have no identity: web (100.64.0.4) is not
	// known to be tag:server and 100.64.0.1 is not alice's laptop.
	noNodes := Errors{
		{Line: 17, Col: 60, Msg: "test failed: alice@example.com -> web:80: want accept, policy would deny"},
	}
	want := Errors{
		{Line: 19, Col: 57, Msg: "test failed: bob@example.com -> web:53 (tcp): want accept, policy would deny"},
		{Line: 20, Col: 36, Msg: "test failed: tag:client -> tag:server:22: want accept, policy would deny"},
		{Line: 20, Col: 53, Msg: "test failed: tag:client -> 100.64.0.4:80: want accept, policy would deny"},
		{Line: 21, Col: 36, Msg: "test failed: 100.64.0.1 -> tag:server:22: want accept, policy would deny"},
	}
	noNodes = append(noNodes, want...)
	if diff := cmp.Diff(noNodes, p.RunTests()); diff != "" {
		t.Errorf("RunTests() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[:3], p.RunTests(testNodes()...)); diff != "" {
		t.Errorf("RunTests(nodes) (-want +got):\n%s", diff)
	}
	err := Check([]byte(src), testNodes()...)
	if err == nil || err.Error() != want[:3].Error() {
		t.Errorf("Check = %v, want %v", err, want[:3])
	}
	if err := Check([]byte(header + `"tests": [{"src": "a@x", "accept": ["8.8.8.8:1"]}]}`)); err != nil {
		t.Errorf("Check with no acls (allow all) = %v, want nil", err)
	}
}
