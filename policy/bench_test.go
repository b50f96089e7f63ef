package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// benchSetup builds a tailnet of n nodes (1,000 users with a few devices
// each, the rest tagged across 100 tags, some subnet routers and exit
// nodes) and a policy of rules ACLs mixing groups, users, tags, hosts,
// CIDRs and autogroups.
func benchSetup(nNodes, rules int) (*Policy, []Node, error) {
	const users, groups, tags = 1000, 50, 100
	var b strings.Builder
	b.WriteString("{\n\"groups\": {\n")
	for g := range groups {
		var members []string
		for u := g; u < users; u += groups * 4 {
			members = append(members, fmt.Sprintf("%q", fmt.Sprintf("user%d@example.com", u)))
		}
		fmt.Fprintf(&b, "\t\"group:g%d\": [%s],\n", g, strings.Join(members, ", "))
	}
	b.WriteString("},\n\"hosts\": {\"lan\": \"10.0.0.0/8\", \"dmz\": \"172.16.0.0/24\"},\n\"tagOwners\": {\n")
	for tg := range tags {
		fmt.Fprintf(&b, "\t\"tag:t%d\": [\"group:g%d\"],\n", tg, tg%groups)
	}
	b.WriteString("},\n\"acls\": [\n")
	for i := range rules {
		var src, dst string
		switch i % 10 {
		case 0:
			src, dst = `"autogroup:member"`, `"autogroup:self:*"`
		case 1:
			src, dst = fmt.Sprintf(`"group:g%d"`, i%groups), fmt.Sprintf(`"tag:t%d:22,443"`, i%tags)
		case 2:
			src, dst = fmt.Sprintf(`"tag:t%d", "tag:t%d"`, i%tags, (i+7)%tags), fmt.Sprintf(`"tag:t%d:5432"`, (i+1)%tags)
		case 3:
			src, dst = fmt.Sprintf(`"user%d@example.com"`, i%users), fmt.Sprintf(`"user%d@example.com:*"`, (i+1)%users)
		case 4:
			src, dst = fmt.Sprintf(`"group:g%d"`, i%groups), `"lan:80-90"`
		case 5:
			src, dst = `"100.64.0.0/16"`, fmt.Sprintf(`"tag:t%d:8000-9000"`, i%tags)
		case 6:
			src, dst = fmt.Sprintf(`"group:g%d"`, i%groups), `"autogroup:internet:*"`
		case 7:
			src, dst = `"autogroup:tagged"`, fmt.Sprintf(`"tag:t%d:9100"`, i%tags)
		case 8:
			src, dst = fmt.Sprintf(`"tag:t%d"`, i%tags), `"dmz:443"`
		case 9:
			src, dst = fmt.Sprintf(`"group:g%d", "group:g%d"`, i%groups, (i+3)%groups), fmt.Sprintf(`"group:g%d:3000"`, (i+1)%groups)
		}
		fmt.Fprintf(&b, "\t{\"action\": \"accept\", \"src\": [%s], \"dst\": [%s]},\n", src, dst)
	}
	b.WriteString("],\n}\n")
	p, err := Parse([]byte(b.String()))
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
