package policy

import (
	"reflect"
	"slices"
)

// AllowsAll reports whether the policy has no "acls" section, which
// Tailscale and headscale read as "everyone reaches everything". Such a
// policy still carries tagOwners and autoApprovers.
func (p *Policy) AllowsAll() bool { return p == nil || p.allowAll }

// ruleSnap is a copy of one compiled rule, taken under the owner's lock, so
// two Compiled values can be compared without holding both locks.
type ruleSnap struct {
	acl                   acl
	hasSelf               bool
	srcIdent, srcAll, dst bitset
}

// compiledSnap is what ChangedFrom needs of the old Compiled.
type compiledSnap struct {
	pol       *Policy
	rules     []ruleSnap
	ids       []int64 // by slot; 0 where free
	nodes     []Node  // by slot
	userNodes bitset  // untagged nodes that have a user
}

func (c *Compiled) snapshot() compiledSnap {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := compiledSnap{pol: c.pol, ids: make([]int64, len(c.nodes)), nodes: make([]Node, len(c.nodes))}
	c.live.each(func(slot int) {
		s.ids[slot] = c.nodes[slot].ID
		s.nodes[slot] = c.nodes[slot].Node
	})
	for _, b := range c.userNodes {
		s.userNodes.or(b)
	}
	for _, r := range c.rules {
		s.rules = append(s.rules, ruleSnap{
			acl: r.acl, hasSelf: r.hasSelf,
			srcIdent: slices.Clone(r.srcIdent), srcAll: slices.Clone(r.srcAll), dst: slices.Clone(r.dst),
		})
	}
	return s
}

// ChangedFrom returns the IDs of c's nodes whose packet filter or peer set
// differs from what old gives them, sorted: the nodes a policy replacement
// must update. A nil old means allow-all.
//
// It first narrows the candidates: rules equal in both (same text, same
// resolved groups, same member nodes) at the start and end of the rule
// lists cannot change anyone, so only the members of the rules in between
// (for a one-rule edit, that rule's sources and destinations) are
// compared, filter by filter.
func (c *Compiled) ChangedFrom(old *Compiled) []int64 {
	if old == nil {
		var err error
		if old, err = AllowAll(c.Nodes()); err != nil {
			return c.allIDs()
		}
	}
	prev := old.snapshot()
	c.mu.Lock()
	cand := c.candidatesLocked(&prev)
	ids := c.idsLocked(cand)
	c.mu.Unlock()
	var out []int64
	for _, id := range ids {
		if !reflect.DeepEqual(old.FilterFor(id), c.FilterFor(id)) || !slices.Equal(old.PeersOf(id), c.PeersOf(id)) {
			out = append(out, id)
		}
	}
	return out
}

// Nodes returns the nodes c was compiled for (with later updates), by ID.
func (c *Compiled) Nodes() []Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Node, 0, len(c.slotOf))
	c.live.each(func(slot int) { out = append(out, c.nodes[slot].Node) })
	slices.SortFunc(out, func(a, b Node) int { return cmpID(a.ID, b.ID) })
	return out
}

func cmpID(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (c *Compiled) allIDs() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.idsLocked(c.live)
}

// candidatesLocked returns the slots of c whose filter or peers may differ
// from prev's.
func (c *Compiled) candidatesLocked(prev *compiledSnap) bitset {
	var cand bitset
	// perm maps prev's slots to c's; nodes known to only one side, or
	// different on the two sides, are candidates themselves.
	perm := make([]int, len(prev.ids))
	for slot, id := range prev.ids {
		perm[slot] = -1
		if id == 0 {
			continue
		}
		if s, ok := c.slotOf[id]; ok {
			perm[slot] = s
			if !sameNode(&prev.nodes[slot], &c.nodes[s].Node) {
				cand.set(s)
			}
		}
	}
	inOld := make(map[int64]bool, len(prev.ids))
	for _, id := range prev.ids {
		inOld[id] = true
	}
	c.live.each(func(slot int) {
		if !inOld[c.nodes[slot].ID] {
			cand.set(slot)
		}
	})
	translate := func(b bitset) bitset {
		var out bitset
		b.each(func(slot int) {
			if slot < len(perm) && perm[slot] >= 0 {
				out.set(perm[slot])
			}
		})
		return out
	}
	olds := make([]ruleSnap, len(prev.rules))
	for i, r := range prev.rules {
		olds[i] = ruleSnap{acl: r.acl, hasSelf: r.hasSelf,
			srcIdent: translate(r.srcIdent), srcAll: translate(r.srcAll), dst: translate(r.dst)}
	}
	same := func(o ruleSnap, n *crule) bool {
		return o.hasSelf == n.hasSelf && aclEqual(o.acl, n.acl) && groupsEqual(n.acl, prev.pol, c.pol) &&
			bitsetEqual(o.srcIdent, n.srcIdent) && bitsetEqual(o.srcAll, n.srcAll) && bitsetEqual(o.dst, n.dst)
	}
	p := 0
	for p < len(olds) && p < len(c.rules) && same(olds[p], c.rules[p]) {
		p++
	}
	q := 0
	for q < len(olds)-p && q < len(c.rules)-p && same(olds[len(olds)-1-q], c.rules[len(c.rules)-1-q]) {
		q++
	}
	oldMid, newMid := olds[p:len(olds)-q], c.rules[p:len(c.rules)-q]
	// When the rules in between cover the same nodes on both sides (an
	// edit of ports or protocols, or of names that resolve to the same
	// nodes), peer sets are unchanged and only destinations' filters can
	// differ.
	sameNodes := len(oldMid) == len(newMid)
	for i := 0; sameNodes && i < len(oldMid); i++ {
		o, n := oldMid[i], newMid[i]
		sameNodes = o.hasSelf == n.hasSelf && bitsetEqual(o.srcIdent, n.srcIdent) &&
			bitsetEqual(o.srcAll, n.srcAll) && bitsetEqual(o.dst, n.dst)
	}
	self := false
	for _, r := range oldMid {
		cand.or(r.dst)
		if !sameNodes {
			cand.or(r.srcAll)
		}
		self = self || r.hasSelf
	}
	for _, r := range newMid {
		cand.or(r.dst)
		if !sameNodes {
			cand.or(r.srcAll)
		}
		self = self || r.hasSelf
	}
	if self {
		// autogroup:self reaches every user-owned node; rather than
		// work out which users' nodes a changed self rule touches,
		// compare them all.
		for _, b := range c.userNodes {
			cand.or(b)
		}
		cand.or(translate(prev.userNodes))
	}
	var live bitset
	live.orAnd(cand, c.live)
	return live
}

func aclEqual(a, b acl) bool {
	return slices.Equal(a.src, b.src) && slices.Equal(a.protos, b.protos) &&
		slices.EqualFunc(a.dsts, b.dsts, func(x, y aclDst) bool {
			return x.a == y.a && slices.Equal(x.ports, y.ports)
		})
}

// groupsEqual reports whether every group the rule names has the same
// members in both policies (membership decides which ports of a
// destination apply to a node, beyond the rule's node sets).
func groupsEqual(a acl, p1, p2 *Policy) bool {
	eq := func(al alias) bool {
		return al.kind != kindGroup || slices.Equal(p1.groups[al.name], p2.groups[al.name])
	}
	for _, s := range a.src {
		if !eq(s) {
			return false
		}
	}
	for _, d := range a.dsts {
		if !eq(d.a) {
			return false
		}
	}
	return true
}

func bitsetEqual(a, b bitset) bool {
	n := max(len(a), len(b))
	for i := range n {
		var x, y uint64
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return false
		}
	}
	return true
}
