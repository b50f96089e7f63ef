package policy

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/wire/ctrl"
)

const updatePolicy = header + `
	"acls": [
		{"action": "accept", "src": ["group:admins"], "dst": ["*:22"]},
		{"action": "accept", "src": ["autogroup:member"], "dst": ["autogroup:self:*", "tag:server:80,443"]},
		{"action": "accept", "proto": "udp", "src": ["tag:client", "bob@example.com"], "dst": ["tag:server:53", "internal:*"]},
		{"action": "accept", "src": ["internal"], "dst": ["carol@example.com:8080"]},
		{"action": "accept", "src": ["tag:exit"], "dst": ["autogroup:tagged:9100"]},
		{"action": "accept", "src": ["carol@example.com"], "dst": ["autogroup:internet:*"]},
	],
}`

func randomNode(r *rand.Rand, id int64) Node {
	n := Node{ID: id, IPs: []netip.Addr{netip.AddrFrom4([4]byte{100, 64, byte(r.IntN(2)), byte(r.IntN(40))})}}
	switch r.IntN(7) {
	case 0:
		n.User = "alice@example.com"
	case 1:
		n.User = "bob@example.com"
	case 2:
		n.User = "carol@example.com"
	case 3:
		n.Tags = []string{"tag:server"}
	case 4:
		n.Tags = []string{"tag:router"}
		n.Routes = pfxs("10.33.0.0/16")
	case 5:
		n.Tags = []string{"tag:exit", "tag:client"}
		n.Routes = pfxs("0.0.0.0/0", "::/0")
	case 6:
		n.Tags = []string{"tag:client"}
	}
	return n
}

type snapshot struct {
	filters map[int64][]ctrl.FilterRule
	peers   map[int64][]int64
}

func snap(c *Compiled, ids []int64) snapshot {
	s := snapshot{filters: map[int64][]ctrl.FilterRule{}, peers: map[int64][]int64{}}
	for _, id := range ids {
		s.filters[id] = c.FilterFor(id)
		s.peers[id] = c.PeersOf(id)
	}
	return s
}

// TestUpdateMatchesFullCompile applies random adds, changes and removals
// and checks, after each, that the incremental state equals a fresh
// compile and that every node whose filter or peers changed was reported.
func TestUpdateMatchesFullCompile(t *testing.T) {
	p := mustParse(t, updatePolicy)
	r := rand.New(rand.NewPCG(1, 2))
	current := map[int64]Node{}
	for id := int64(1); id <= 30; id++ {
		current[id] = randomNode(r, id)
	}
	list := func() []Node {
		var out []Node
		for _, n := range current {
			out = append(out, n)
		}
		slices.SortFunc(out, func(a, b Node) int { return int(a.ID - b.ID) })
		return out
	}
	ids := func() []int64 {
		var out []int64
		for _, n := range list() {
			out = append(out, n.ID)
		}
		return out
	}
	c, err := p.Compile(list())
	if err != nil {
		t.Fatal(err)
	}
	nextID := int64(31)
	for step := range 250 {
		before := snap(c, ids())
		var affected []int64
		var what string
		switch op := r.IntN(3); {
		case op == 0 || len(current) < 5:
			n := randomNode(r, nextID)
			nextID++
			current[n.ID] = n
			affected = c.Update(n)
			what = "add"
		case op == 1:
			id := ids()[r.IntN(len(current))]
			n := randomNode(r, id)
			current[id] = n
			affected = c.Update(n)
			what = "change"
		default:
			id := ids()[r.IntN(len(current))]
			delete(current, id)
			affected = c.Remove(id)
			what = "remove"
		}
		fresh, err := p.Compile(list())
		if err != nil {
			t.Fatal(err)
		}
		after, want := snap(c, ids()), snap(fresh, ids())
		if diff := cmp.Diff(want, after, cmp.AllowUnexported(snapshot{})); diff != "" {
			t.Fatalf("step %d (%s): incremental state differs from full compile (-full +incremental):\n%s", step, what, diff)
		}
		for _, id := range ids() {
			prevF, existed := before.filters[id]
			changed := !existed || !cmp.Equal(prevF, after.filters[id]) || !slices.Equal(before.peers[id], after.peers[id])
			if changed && !slices.Contains(affected, id) {
				t.Fatalf("step %d (%s): node %d changed but was not reported (reported %v)", step, what, id, affected)
			}
		}
	}
}

func TestUpdateUnchangedNode(t *testing.T) {
	c := mustCompile(t, updatePolicy, testNodes())
	if got := c.Update(testNodes()[0]); got != nil {
		t.Errorf("Update(same node) = %v, want nil", got)
	}
	if got := c.Remove(99); got != nil {
		t.Errorf("Remove(unknown) = %v, want nil", got)
	}
}

func TestUpdateReportsOnlyAffected(t *testing.T) {
	// Adding a tag:server node changes the filters of nothing else, and
	// the peer sets of the nodes that may reach it: admins (22) and
	// members (80,443), plus clients and bob (53/udp) and exit (9100).
	c := mustCompile(t, updatePolicy, testNodes())
	got := c.Update(Node{ID: 100, Tags: []string{"tag:server"}, IPs: ips("100.64.1.100")})
	want := []int64{1, 2, 3, 6, 7, 100}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Update (-want +got):\n%s", diff)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := mustCompile(t, updatePolicy, testNodes())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r := rand.New(rand.NewPCG(3, 4))
		for i := range 200 {
			c.Update(randomNode(r, int64(100+i%10)))
			if i%3 == 0 {
				c.Remove(int64(100 + i%10))
			}
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		default:
		}
		id := int64(1 + i%7)
		c.FilterFor(id)
		c.PeersOf(id)
		c.Visible(id, 100)
	}
}
