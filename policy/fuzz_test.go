package policy

import (
	"errors"
	"testing"
)

// FuzzParse checks that hostile policy files never panic the parser or
// the compiler and that every error carries a position. The seeds run as
// part of the normal test suite.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(updatePolicy))
	f.Add([]byte(header + `"acls": [{"action": "accept", "src": ["*"], "dst": ["autogroup:self:22,80-90"]}],
		"ssh": [{"action": "check", "src": ["autogroup:member"], "dst": ["autogroup:self"], "users": ["root"], "checkPeriod": "always"}],
		"tests": [{"src": "100.64.0.1", "proto": "udp", "accept": ["[fd7a:115c:a1e0::4]:53"], "deny": ["web:1"]}],
		"autoApprovers": {"routes": {"::/0": ["tag:exit"]}, "exitNode": ["autogroup:member"]}}`))
	f.Add([]byte("// c\n{/* x */\"acls\":[{\"action\":\"accept\",\"src\":[\"1.2.3.4/33\"],\"dst\":[\"fd7a::1:65536\"],},],}"))
	f.Add([]byte(`{"hosts": {"a": "1.2.3.4"}, "acls": [{"action": "accept", "src": ["a"], "dst": ["a:*"], "proto": "0"}]}`))
	f.Add([]byte("{\"acls\": \"\xff\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %v is not a non-empty Errors", err)
			}
			for _, e := range es {
				if e.Line < 1 || e.Col < 1 || e.Msg == "" {
					t.Fatalf("error without position or message: %#v", e)
				}
			}
			return
		}
		c, err := p.Compile(testNodes())
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		for _, n := range testNodes() {
			c.FilterFor(n.ID)
			c.PeersOf(n.ID)
		}
		c.Update(Node{ID: 1, Tags: []string{"tag:x"}, IPs: ips("100.64.9.9")})
		c.Remove(2)
		p.RunTests(testNodes()...)
		p.AutoApprove(testNodes()[4], pfxs("10.0.0.0/8", "0.0.0.0/0"))
		_, _ = p.ValidTags("alice@example.com", []string{"tag:server", "tag:x"})
	})
}
