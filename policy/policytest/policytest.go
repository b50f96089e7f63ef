// Package policytest builds synthetic tailnet policies for benchmarks and
// tests of the policy engine and of weft-control. It imports only the
// standard library.
package policytest

import (
	"fmt"
	"strings"
)

// Policy returns a HuJSON policy of rules ACLs over 1,000 users
// ("user<N>@example.com"), 50 groups ("group:g<N>"), 100 tags ("tag:t<N>",
// owned by the groups) and two hosts ("lan" 10.0.0.0/8, "dmz"
// 172.16.0.0/24), mixing groups, users, tags, hosts, CIDRs and the
// autogroups member, self, tagged and internet.
func Policy(rules int) string {
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
	return b.String()
}
