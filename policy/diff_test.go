package policy

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// bruteChanged compares every node's filter and peers in both compiles.
func bruteChanged(old, c *Compiled, ids []int64) []int64 {
	var out []int64
	for _, id := range ids {
		if !reflect.DeepEqual(old.FilterFor(id), c.FilterFor(id)) || !slices.Equal(old.PeersOf(id), c.PeersOf(id)) {
			out = append(out, id)
		}
	}
	return out
}

// TestChangedFrom replaces a policy with edited versions (a rule added,
// removed or changed, a group's members changed, allow-all) and checks
// that ChangedFrom reports exactly the nodes a full comparison finds.
func TestChangedFrom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var nodes []Node
	var ids []int64
	for id := int64(1); id <= 60; id++ {
		nodes = append(nodes, randomNode(r, id))
		ids = append(ids, id)
	}
	base := updatePolicy
	edits := map[string]string{
		"same": base,
		"rule added": strings.Replace(base, `"acls": [`,
			`"acls": [{"action": "accept", "src": ["tag:router"], "dst": ["tag:server:8080"]},`, 1),
		"rule removed": strings.Replace(base,
			`{"action": "accept", "src": ["internal"], "dst": ["carol@example.com:8080"]},`, "", 1),
		"port changed": strings.Replace(base, `"dst": ["autogroup:tagged:9100"]`, `"dst": ["autogroup:tagged:9101"]`, 1),
		"group changed": strings.Replace(base, `"group:admins": ["alice@example.com"]`,
			`"group:admins": ["alice@example.com", "bob@example.com"]`, 1),
		"self removed": strings.Replace(base, `"autogroup:self:*", `, "", 1),
		"allow all":    header + "}",
	}
	for name, src := range edits {
		t.Run(name, func(t *testing.T) {
			old := mustCompile(t, base, nodes)
			c := mustCompile(t, src, nodes)
			got := c.ChangedFrom(old)
			want := bruteChanged(old, c, ids)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ChangedFrom (-brute +got):\n%s", diff)
			}
			t.Logf("%d of %d nodes changed", len(got), len(ids))
			if name == "same" && len(got) != 0 {
				t.Errorf("an identical policy changed %v", got)
			}
		})
	}
}

// TestChangedFromUpdatedOld: the old Compiled evolved through updates and
// removals (so its slots differ from a fresh compile's) and still diffs
// exactly; nil old means allow-all.
func TestChangedFromUpdatedOld(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var nodes []Node
	for id := int64(1); id <= 40; id++ {
		nodes = append(nodes, randomNode(r, id))
	}
	old := mustCompile(t, updatePolicy, nodes[:30])
	for _, n := range nodes[30:] {
		old.Update(n)
	}
	for _, id := range []int64{3, 17, 31} {
		old.Remove(id)
	}
	var left []Node
	var ids []int64
	for _, n := range nodes {
		if n.ID != 3 && n.ID != 17 && n.ID != 31 {
			left = append(left, n)
			ids = append(ids, n.ID)
		}
	}
	slices.Reverse(left)
	edited := strings.Replace(updatePolicy, `"dst": ["*:22"]`, `"dst": ["*:2222"]`, 1)
	c := mustCompile(t, edited, left)
	if diff := cmp.Diff(bruteChanged(old, c, ids), c.ChangedFrom(old)); diff != "" {
		t.Errorf("ChangedFrom (-brute +got):\n%s", diff)
	}
	all, err := AllowAll(left)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(bruteChanged(all, c, ids), c.ChangedFrom(nil)); diff != "" {
		t.Errorf("ChangedFrom(nil) (-brute +got):\n%s", diff)
	}
}
