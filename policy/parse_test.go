package policy

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"syntax", "{\n  \"acls\": [\n    {\"action\": \"accept\" \"src\": []}\n  ]\n}",
			`3:25: syntax error: invalid character '"' after object value (expecting ',' or '}')`},
		{"not an object", `[]`, `1:1: policy must be an object, not an array`},
		{"unknown top-level field", "{\n\t\"acl\": [],\n}", `2:2: unknown field "acl" in policy (did you mean "acls"?)`},
		{"unsupported field", "{\"grants\": []}", `1:2: field "grants" is not supported by weft yet`},
		{"duplicate field", "{\"acls\": [],\n \"acls\": []}", `2:2: duplicate field "acls" in policy`},
		{"unknown acl field", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"*:*\"], \"ports\": []}]}",
			`1:62: unknown field "ports" in acls[0]`},
		{"bad action", "{\"acls\": [\n  {\"action\": \"deny\", \"src\": [\"*\"], \"dst\": [\"*:*\"]}]}",
			`2:14: acls[0]: action "deny" is not supported (only "accept"; anything not accepted is denied)`},
		{"missing ports", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"autogroup:self\"]}]}",
			`1:54: acls[0]: destination "autogroup:self": port range "self": "self" is not a port number`},
		{"no colon", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"web\"]}]}",
			`1:54: acls[0]: destination "web" has no ports; write "web:*" for all ports`},
		{"reversed port range", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"*:2000-1000\"]}]}",
			`1:54: acls[0]: destination "*:2000-1000": port range "2000-1000": first port is greater than last`},
		{"port too big", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"*:70000\"]}]}",
			`1:54: acls[0]: destination "*:70000": port range "70000": port 70000 is out of range 0-65535`},
		{"empty port in list", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"*:22,\"]}]}",
			`1:54: acls[0]: destination "*:22,": port range "": empty port number`},
		{"unknown group", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"group:eng\"], \"dst\": [\"*:*\"]}]}",
			`1:40: group "group:eng" is not defined in "groups"`},
		{"unknown tag in dst", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"], \"dst\": [\"tag:db:5432\"]}]}",
			`1:54: tag "tag:db" is not defined in "tagOwners"`},
		{"unknown host", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"printer\"], \"dst\": [\"*:*\"]}]}",
			`1:40: host "printer" is not defined in "hosts"`},
		{"bad CIDR", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"10.0.0.0/33\"], \"dst\": [\"*:*\"]}]}",
			`1:40: invalid CIDR "10.0.0.0/33"`},
		{"bad IP", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"10.0.0.300\"], \"dst\": [\"*:*\"]}]}",
			`1:40: invalid IP address "10.0.0.300"`},
		{"bad host value", "{\"hosts\": {\"db\": \"10.1/8\"}}", `1:18: hosts.db: invalid CIDR "10.1/8"`},
		{"bad proto", "{\"acls\": [{\"action\": \"accept\", \"proto\": \"tpc\", \"src\": [\"*\"], \"dst\": [\"*:*\"]}]}",
			`1:41: acls[0]: unknown protocol "tpc" (use a name such as "tcp" or a number 1-255)`},
		{"proto leading zero", "{\"acls\": [{\"action\": \"accept\", \"proto\": \"06\", \"src\": [\"*\"], \"dst\": [\"*:*\"]}]}",
			`1:41: acls[0]: invalid protocol "06": leading zeros are not allowed`},
		{"ports with icmp", "{\"acls\": [{\"action\": \"accept\", \"proto\": \"icmp\", \"src\": [\"*\"], \"dst\": [\"*:22\"]}]}",
			`1:71: acls[0]: destination "*:22": protocol 1 has no ports; use "*"`},
		{"self in src", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"autogroup:self\"], \"dst\": [\"*:*\"]}]}",
			`1:40: "autogroup:self" not valid on the src side of a rule`},
		{"internet in src", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"autogroup:internet\"], \"dst\": [\"*:*\"]}]}",
			`1:40: autogroup:internet can only be used in ACL destinations`},
		{"self with tag source", "{\"tagOwners\": {\"tag:a\": []},\n\"acls\": [{\"action\": \"accept\", \"src\": [\"tag:a\"], \"dst\": [\"autogroup:self:*\"]}]}",
			`2:57: acls[0]: autogroup:self can only be used with sources that are users, groups, autogroup:member or "*"`},
		{"unknown autogroup", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"autogroup:everyone\"], \"dst\": [\"*:*\"]}]}",
			`1:40: unknown or unsupported autogroup "autogroup:everyone"`},
		{"nested group", "{\"groups\": {\"group:a\": [\"a@x\"], \"group:b\": [\"group:a\"]}}",
			`1:45: group:b: group "group:a" cannot contain another group`},
		{"group member not a user", "{\"groups\": {\"group:a\": [\"bob\"]}}",
			`1:25: group:a: member "bob" is not a user (users contain "@", e.g. "alice@example.com")`},
		{"bad tag name", "{\"tagOwners\": {\"tag:1x\": []}}",
			`1:16: invalid tag name "tag:1x" (want "tag:" then a letter, then letters, digits, '-' or '_')`},
		{"tag owner undefined tag", "{\"tagOwners\": {\"tag:a\": [\"tag:b\"]}}",
			`1:26: tag "tag:b" is not defined in "tagOwners"`},
		{"approver host", "{\"hosts\": {\"h\": \"1.2.3.4\"}, \"autoApprovers\": {\"routes\": {\"10.0.0.0/8\": [\"h\"]}}}",
			`1:73: "h" is not valid in an auto-approver; use a user, group or tag`},
		{"approver bad route", "{\"autoApprovers\": {\"routes\": {\"10.0.0.0\": []}}}",
			`1:31: autoApprovers.routes: invalid CIDR "10.0.0.0"`},
		{"unknown approver field", "{\"autoApprovers\": {\"exitnode\": []}}",
			`1:20: unknown field "exitnode" in autoApprovers (did you mean "exitNode"?)`},
		{"src wrong type", "{\"acls\": [{\"action\": \"accept\", \"src\": \"*\", \"dst\": [\"*:*\"]}]}",
			`1:39: acls[0].src must be an array of strings, not a string`},
		{"missing dst", "{\"acls\": [{\"action\": \"accept\", \"src\": [\"*\"]}]}", `1:11: acls[0]: missing "dst"`},
		{"ssh bad action", "{\"ssh\": [{\"action\": \"allow\", \"src\": [\"*\"], \"dst\": [\"autogroup:self\"], \"users\": [\"root\"]}]}",
			`1:21: ssh[0]: action "allow" is not valid (want "accept" or "check")`},
		{"ssh wildcard dst", "{\"ssh\": [{\"action\": \"accept\", \"src\": [\"autogroup:member\"], \"dst\": [\"*\"], \"users\": [\"root\"]}]}",
			`1:68: "*" is not valid in an SSH destination`},
		{"ssh checkPeriod with accept", "{\"ssh\": [{\"action\": \"accept\", \"src\": [\"autogroup:member\"], \"dst\": [\"autogroup:self\"], \"users\": [\"root\"], \"checkPeriod\": \"1h\"}]}",
			`1:121: ssh[0]: checkPeriod is only valid with action "check"`},
		{"test without assertions", "{\"tests\": [{\"src\": \"a@x\"}]}", `1:12: tests[0]: a test needs "accept" or "deny"`},
		{"test multi-port", "{\"tests\": [{\"src\": \"a@x\", \"accept\": [\"1.2.3.4:22,80\"]}]}",
			`1:38: tests[0]: "1.2.3.4:22,80": test destinations take a single port: "22,80" is not a port number`},
		{"test src group", "{\"groups\": {\"group:g\": []}, \"tests\": [{\"src\": \"group:g\", \"accept\": [\"1.2.3.4:22\"]}]}",
			`1:47: group "group:g" is not valid in a test`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want error %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Parse error:\n got: %s\nwant: %s", got, tt.want)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 || es[0].Line == 0 {
				t.Errorf("error %#v is not an Errors with a position", err)
			}
		})
	}
}

func TestParseSeveralErrors(t *testing.T) {
	src := `{
	// comments and trailing commas are fine
	"acls": [
		{"action": "accept", "src": ["group:nope"], "dst": ["*:*"],},
		{"action": "accept", "src": ["*"], "dst": ["tag:nope:22"], "bogus": 1},
	],
}`
	_, err := Parse([]byte(src))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse error %v is not Errors", err)
	}
	want := Errors{
		{Line: 4, Col: 32, Msg: `group "group:nope" is not defined in "groups"`},
		{Line: 5, Col: 46, Msg: `tag "tag:nope" is not defined in "tagOwners"`},
		{Line: 5, Col: 62, Msg: `unknown field "bogus" in acls[1]`},
	}
	if diff := cmp.Diff(want, es); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestParseValid(t *testing.T) {
	src := header + `
	"autoApprovers": {
		"routes": {"10.0.0.0/8": ["tag:router", "group:admins"]},
		"exitNode": ["tag:exit"],
	},
	"acls": [
		{"action": "accept", "src": ["*"], "dst": ["*:*"]},
		{"action": "accept", "proto": "TCP", "src": ["alice@example.com", "100.64.0.0/10", "fd7a:115c:a1e0::/48"], "dst": ["fd7a:115c:a1e0::4:22", "[fd7a:115c:a1e0::5]:80"]},
		{"action": "accept", "proto": "icmp", "src": ["autogroup:tagged"], "dst": ["autogroup:member:*"]},
	],
	"ssh": [
		{"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["autogroup:nonroot", "root"], "checkPeriod": "12h"},
		{"action": "accept", "src": ["tag:client"], "dst": ["tag:server"], "users": ["ubuntu"], "acceptEnv": ["GIT_*"]},
	],
	"tests": [
		{"src": "alice@example.com", "proto": "tcp", "accept": ["tag:server:22"], "deny": []},
	],
}`
	p := mustParse(t, src)
	if len(p.acls) != 3 || len(p.ssh) != 2 || len(p.tests) != 1 || len(p.routeApprovers) != 1 {
		t.Errorf("parsed %d acls, %d ssh rules, %d tests, %d route approvers; want 3, 2, 1, 1",
			len(p.acls), len(p.ssh), len(p.tests), len(p.routeApprovers))
	}
	if got := p.acls[1].dsts[1].a.prefix.String(); got != "fd7a:115c:a1e0::5/128" {
		t.Errorf("bracketed IPv6 destination parsed as %s", got)
	}
}

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"*", "[{0 65535}]"},
		{"22", "[{22 22}]"},
		{"22,80", "[{22 22} {80 80}]"},
		{"1000-2000", "[{1000 2000}]"},
		{"22,1000-2000,443", "[{22 22} {1000 2000} {443 443}]"},
		{"0-65535", "[{0 65535}]"},
	}
	for _, tt := range tests {
		got, err := parsePorts(tt.in)
		if err != nil {
			t.Errorf("parsePorts(%q): %v", tt.in, err)
			continue
		}
		if s := fmtPorts(got); s != tt.want {
			t.Errorf("parsePorts(%q) = %s, want %s", tt.in, s, tt.want)
		}
	}
	for _, bad := range []string{"", "-", "22-", "-22", "a", "22-21", "65536", "+1", "1 ", "*,22"} {
		if _, err := parsePorts(bad); err == nil {
			t.Errorf("parsePorts(%q) succeeded, want error", bad)
		}
	}
}
