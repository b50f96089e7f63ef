package policy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"weft.dev/weft/policy/policytest"
)

// benchSetup builds a tailnet of n nodes (1,000 users with a few devices
// each, the rest tagged across 100 tags, some subnet routers and exit
// nodes) and a policy of rules ACLs mixing groups, users, tags, hosts,
// CIDRs and autogroups.
func benchSetup(nNodes, rules int) (*Policy, []Node, error) {
	p, err := Parse([]byte(policytest.Policy(rules)))
	if err != nil {
		return nil, nil, err
	}
	nodes := make([]Node, nNodes)
	for i := range nodes {
		nodes[i] = benchNode(int64(i+1), i)
	}
	return p, nodes, nil
}

func benchNode(id int64, i int) Node {
	n := Node{ID: id, IPs: []netip.Addr{
		netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)}),
		netip.AddrFrom16([16]byte{0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0, 14: byte(i >> 8), 15: byte(i)}),
	}}
	switch {
	case i%5 != 0: // 80% user devices
		n.User = fmt.Sprintf("user%d@example.com", i%1000)
	case i%50 == 0:
		n.Tags = []string{fmt.Sprintf("tag:t%d", i%100)}
		n.Routes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
	case i%25 == 0:
		n.Tags = []string{fmt.Sprintf("tag:t%d", i%100)}
		n.Routes = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)}
	default:
		n.Tags = []string{fmt.Sprintf("tag:t%d", i%100)}
	}
	return n
}

// BenchmarkCompile5000 measures a full compile of 5,000 nodes and 500
// rules (including building every node's filter), a one-node update, and
// prints how many times cheaper the update is than the full compile.
func BenchmarkCompile5000(b *testing.B) {
	p, nodes, err := benchSetup(5000, 500)
	if err != nil {
		b.Fatal(err)
	}
	var full time.Duration
	b.Run("compile", func(b *testing.B) {
		var rules, dsts, srcs int
		start := time.Now()
		for b.Loop() {
			c, err := p.Compile(nodes)
			if err != nil {
				b.Fatal(err)
			}
			rules, dsts, srcs = 0, 0, 0
			for _, n := range nodes {
				f := c.FilterFor(n.ID)
				rules += len(f)
				for _, r := range f {
					dsts += len(r.DstPorts)
					srcs += len(r.SrcIPs)
				}
			}
		}
		full = time.Since(start) / time.Duration(b.N)
		b.ReportMetric(float64(rules)/float64(len(nodes)), "rules/node")
		b.ReportMetric(float64(dsts)/float64(len(nodes)), "dstports/node")
		b.ReportMetric(float64(srcs)/float64(len(nodes)), "srcips/node")
	})
	b.Run("update", func(b *testing.B) {
		c, err := p.Compile(nodes)
		if err != nil {
			b.Fatal(err)
		}
		var affected int
		i := 0
		start := time.Now()
		for b.Loop() {
			// Move one node between identities and back, then rebuild the
			// filters of every node the update reported.
			n := nodes[i%len(nodes)]
			changed := n
			changed.Tags, changed.User = []string{"tag:t1"}, ""
			ids := c.Update(changed)
			affected = len(ids)
			for _, id := range ids {
				c.FilterFor(id)
			}
			c.Update(n)
			i += 7
		}
		per := time.Since(start) / time.Duration(b.N)
		b.ReportMetric(float64(affected), "affected")
		if full > 0 && per > 0 {
			b.ReportMetric(float64(full)/float64(per), "x-faster-than-full")
		}
	})
}
