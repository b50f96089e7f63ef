package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/tailscale/hujson"

	"weft.dev/weft/wire/ctrl"
)

// policyTest is one entry of the "tests" section: from src, each accept
// destination must be reachable and each deny destination must not be.
type policyTest struct {
	src    strAt
	srcA   alias
	proto  string
	protos []int
	accept []testDst
	deny   []testDst
}

type testDst struct {
	text string
	off  int
	a    alias
	port uint16
}

func (ps *parser) test(v *hujson.Value, path string) {
	f := ps.fields(v, path, "src", "proto", "accept", "deny")
	if f == nil {
		return
	}
	var t policyTest
	ok := true
	if sv := f["src"]; sv == nil {
		ps.errorf(v.StartOffset, "%s: missing \"src\"", path)
		ok = false
	} else if s, sok := ps.str(sv, path+".src"); sok {
		t.src = s
		if t.srcA, sok = ps.alias(s, useTest); !sok {
			ok = false
		} else if t.srcA.kind == kindPrefix && !t.srcA.prefix.IsSingleIP() {
			ps.errorf(s.off, "%s: src %q must be a single address, not a CIDR", path, s.s)
			ok = false
		}
	} else {
		ok = false
	}
	if pv := f["proto"]; pv != nil {
		if s, sok := ps.str(pv, path+".proto"); sok {
			protos, err := protoNumbers(s.s)
			switch {
			case err != nil:
				ps.errorf(s.off, "%s: %v", path, err)
				ok = false
			case !protoHasPorts(protos):
				ps.errorf(s.off, "%s: test proto must be \"tcp\", \"udp\", \"sctp\" or empty", path)
				ok = false
			}
			t.proto, t.protos = s.s, protos
		}
	}
	if f["accept"] == nil && f["deny"] == nil {
		ps.errorf(v.StartOffset, "%s: a test needs \"accept\" or \"deny\"", path)
		ok = false
	}
	dsts := func(key string) []testDst {
		var out []testDst
		if f[key] == nil {
			return nil
		}
		for _, d := range ps.strs(f[key], path+"."+key) {
			host, port, found := splitHostPorts(d.s)
			if !found {
				ps.errorf(d.off, "%s: %q needs a port, e.g. %q", path, d.s, d.s+":22")
				ok = false
				continue
			}
			n, err := parsePort(port)
			if err != nil {
				ps.errorf(d.off, "%s: %q: test destinations take a single port: %v", path, d.s, err)
				ok = false
				continue
			}
			a, aok := ps.alias(strAt{host, d.off}, useTest)
			if !aok {
				ok = false
				continue
			}
			if a.kind == kindPrefix && !a.prefix.IsSingleIP() {
				ps.errorf(d.off, "%s: %q must be a single host, not a CIDR", path, d.s)
				ok = false
				continue
			}
			out = append(out, testDst{text: d.s, off: d.off, a: a, port: n})
		}
		return out
	}
	t.accept = dsts("accept")
	t.deny = dsts("deny")
	if ok {
		ps.p.tests = append(ps.p.tests, t)
	}
}

// identity is who a test source or destination is: a user or tags, and
// addresses. Nodes passed to RunTests fill in the other half (the
// addresses of a user's nodes, the owner of an address).
type identity struct {
	user string
	tags []string
	ips  []netip.Addr
}

func (p *Policy) testIdentity(a alias, nodes []nodeInfo) identity {
	var id identity
	switch a.kind {
	case kindUser:
		id.user = a.name
		for i := range nodes {
			if nodes[i].user == a.name {
				id.ips = append(id.ips, nodes[i].IPs...)
			}
		}
	case kindTag:
		id.tags = []string{a.name}
		for i := range nodes {
			if slices.Contains(nodes[i].Tags, a.name) {
				id.ips = append(id.ips, nodes[i].IPs...)
			}
		}
	case kindPrefix:
		ip := a.prefix.Addr()
		id.ips = []netip.Addr{ip}
		for i := range nodes {
			if slices.Contains(nodes[i].IPs, ip) {
				id.user, id.tags = nodes[i].user, nodes[i].Tags
			}
		}
	}
	return id
}

// covers reports whether alias a (on either side of an ACL) includes id.
func (p *Policy) covers(a alias, id identity, internet []netip.Prefix) bool {
	switch a.kind {
	case kindPrefix:
		return slices.ContainsFunc(id.ips, a.prefix.Contains)
	case kindInternet:
		return len(id.ips) > 0 && len(id.tags) == 0 && id.user == "" && addrWithin(id.ips[0], internet)
	case kindSelf:
		return false
	}
	return p.identityMatch(a, id.user, id.tags)
}

// allows reports whether the ACLs let src reach dst on port with protos.
// A test without proto passes if any of TCP, UDP or ICMP is allowed, as in
// headscale's policy tests.
func (p *Policy) allows(src, dst identity, port uint16, protos []int, internet []netip.Prefix) bool {
	acls := p.acls
	if p.allowAll {
		acls = []acl{allowAllACL()}
	}
	for _, r := range acls {
		if len(r.protos) > 0 {
			want := protos
			if len(want) == 0 {
				want = []int{ctrl.ProtoTCP, ctrl.ProtoUDP, ctrl.ProtoICMP, ctrl.ProtoICMPv6}
			}
			if !slices.ContainsFunc(r.protos, func(x int) bool { return slices.Contains(want, x) }) {
				continue
			}
		}
		if !slices.ContainsFunc(r.src, func(a alias) bool { return p.covers(a, src, internet) }) {
			continue
		}
		for _, d := range r.dsts {
			if !slices.ContainsFunc(d.ports, func(pr ctrl.PortRange) bool { return pr.First <= port && port <= pr.Last }) {
				continue
			}
			if d.a.kind == kindSelf {
				if src.user != "" && len(src.tags) == 0 && len(dst.tags) == 0 && src.user == dst.user {
					return true
				}
				continue
			}
			if p.covers(d.a, dst, internet) {
				return true
			}
		}
	}
	return false
}

// RunTests runs the policy's "tests" section and returns one Error per
// failed assertion, located at the destination that failed. Nodes are
// optional: they let IP sources and destinations take on their node's
// identity, and users and tags take on their nodes' addresses.
func (p *Policy) RunTests(nodes ...Node) Errors {
	infos := make([]nodeInfo, len(nodes))
	for i, n := range nodes {
		infos[i] = newNodeInfo(n)
	}
	internet := internetPrefixes()
	var errs Errors
	for _, t := range p.tests {
		src := p.testIdentity(t.srcA, infos)
		proto := ""
		if t.proto != "" {
			proto = " (" + strings.ToLower(t.proto) + ")"
		}
		check := func(ds []testDst, want bool) {
			for _, d := range ds {
				got := p.allows(src, p.testIdentity(d.a, infos), d.port, t.protos, internet)
				if got == want {
					continue
				}
				line, col := p.pos.at(d.off)
				verdict := map[bool]string{true: "accept", false: "deny"}
				errs = append(errs, Error{Line: line, Col: col, Msg: fmt.Sprintf(
					"test failed: %s -> %s%s: want %s, policy would %s",
					t.src.s, d.text, proto, verdict[want], verdict[got])})
			}
		}
		check(t.accept, true)
		check(t.deny, false)
	}
	return errs
}

// Check parses a policy file and runs its tests, returning every parse
// problem or every failed test as Errors, or nil when all is well.
func Check(data []byte, nodes ...Node) error {
	p, err := Parse(data)
	if err != nil {
		return err
	}
	if errs := p.RunTests(nodes...); len(errs) > 0 {
		return errs
	}
	return nil
}
