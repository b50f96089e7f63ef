package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	"weft.dev/weft/wire/ctrl"
)

// Compiled is a policy applied to a set of nodes: per-node packet filters
// and peer visibility, kept up to date one node at a time. It is safe for
// concurrent use.
//
// Every rule keeps bitsets of the node slots its sources and destinations
// cover. A node's membership depends only on that node and the policy, so
// a change to one node flips only that node's bits; the nodes whose filter
// or peer set changed are found from those bits with word-wide set
// operations, never by comparing all pairs.
type Compiled struct {
	mu sync.Mutex
	// Guarded by mu:
	pol       *Policy
	internet  []netip.Prefix
	rules     []*crule
	nodes     []nodeInfo // by slot; valid where live is set
	live      bitset
	slotOf    map[int64]int
	free      []int
	userNodes map[string]bitset // untagged nodes per normalised user, for autogroup:self
}

// crule is one ACL entry with the node sets it covers.
type crule struct {
	acl     acl
	wildSrc bool
	hasSelf bool
	// srcIdent: nodes a user/group/tag/autogroup source names; their IPs
	// are the rule's SrcIPs. srcAll adds nodes whose IPs or subnet routes a
	// source CIDR or host covers: they can send, so they are peers.
	srcIdent bitset
	srcAll   bitset
	dst      bitset   // nodes a destination other than autogroup:self covers
	srcIPs   []string // cached SrcIPs; nil when stale
	// selfSrc caches autogroup:self SrcIPs per normalised user; an entry
	// is dropped when one of that user's nodes changes.
	selfSrc map[string][]string
}

// allowAllACL is what a policy without "acls" means: everyone reaches
// everything, compiled to exactly ctrl.AllowAll().
func allowAllACL() acl {
	return acl{
		src:  []alias{{kind: kindWildcard}},
		dsts: []aclDst{{a: alias{kind: kindWildcard}, ports: []ctrl.PortRange{ctrl.PortRangeAny}}},
	}
}

// AllowAll is the Compiled used while no policy is set: every node's
// filter is ctrl.AllowAll() and every node sees every other.
func AllowAll(nodes []Node) (*Compiled, error) {
	return (&Policy{allowAll: true}).Compile(nodes)
}

// Compile applies the policy to nodes. A nil policy allows all. Node IDs
// must be unique.
func (p *Policy) Compile(nodes []Node) (*Compiled, error) {
	if p == nil {
		p = &Policy{allowAll: true}
	}
	c := &Compiled{
		pol:       p,
		internet:  internetPrefixes(),
		slotOf:    make(map[int64]int, len(nodes)),
		userNodes: make(map[string]bitset),
	}
	acls := p.acls
	if p.allowAll {
		acls = []acl{allowAllACL()}
	}
	for _, a := range acls {
		r := &crule{acl: a}
		for _, s := range a.src {
			if s.kind == kindWildcard {
				r.wildSrc = true
			}
		}
		for _, d := range a.dsts {
			if d.a.kind == kindSelf {
				r.hasSelf = true
			}
		}
		c.rules = append(c.rules, r)
	}
	c.nodes = make([]nodeInfo, 0, len(nodes))
	for _, n := range nodes {
		if _, dup := c.slotOf[n.ID]; dup {
			return nil, fmt.Errorf("compile policy: duplicate node ID %d", n.ID)
		}
		c.placeLocked(c.allocLocked(n.ID), newNodeInfo(n))
	}
	return c, nil
}

func (c *Compiled) allocLocked(id int64) int {
	var slot int
	if k := len(c.free); k > 0 {
		slot = c.free[k-1]
		c.free = c.free[:k-1]
	} else {
		slot = len(c.nodes)
		c.nodes = append(c.nodes, nodeInfo{})
	}
	c.slotOf[id] = slot
	return slot
}

// placeLocked stores n in slot and sets its membership bits in every rule.
func (c *Compiled) placeLocked(slot int, n nodeInfo) {
	c.nodes[slot] = n
	c.live.set(slot)
	if !n.tagged && n.user != "" {
		b := c.userNodes[n.user]
		b.set(slot)
		c.userNodes[n.user] = b
	}
	for _, r := range c.rules {
		ident, all, dst := c.membership(r, &n)
		r.srcIdent.put(slot, ident)
		r.srcAll.put(slot, all)
		r.dst.put(slot, dst)
	}
}

// unplaceLocked clears every bit slot holds.
func (c *Compiled) unplaceLocked(slot int) {
	n := &c.nodes[slot]
	c.live.clear(slot)
	if b, ok := c.userNodes[n.user]; ok {
		b.clear(slot)
		if b.count() == 0 {
			delete(c.userNodes, n.user)
		}
	}
	for _, r := range c.rules {
		r.srcIdent.clear(slot)
		r.srcAll.clear(slot)
		r.dst.clear(slot)
	}
}

// membership says which of the rule's node sets n belongs to.
func (c *Compiled) membership(r *crule, n *nodeInfo) (ident, all, dst bool) {
	for _, s := range r.acl.src {
		switch {
		case s.kind == kindWildcard || s.nodeSelector():
			if c.pol.identityMatch(s, n.user, n.Tags) {
				ident = true
			}
		case s.kind == kindPrefix:
			if prefixCoversSource(s.prefix, n) {
				all = true
			}
		}
	}
	for _, d := range r.acl.dsts {
		if c.dstCovers(d.a, n) {
			dst = true
			break
		}
	}
	return ident, all || ident, dst
}

// prefixCoversSource: traffic from a node's IPs, or from the subnets it
// routes, can come from inside the prefix.
func prefixCoversSource(p netip.Prefix, n *nodeInfo) bool {
	for _, ip := range n.IPs {
		if p.Contains(ip) {
			return true
		}
	}
	for _, s := range n.subnets {
		if p.Overlaps(s) {
			return true
		}
	}
	return false
}

// dstCovers reports whether a destination (other than autogroup:self)
// reaches n: its IPs, its subnet routes, or — for an exit node — the
// internet (autogroup:internet, or a CIDR entirely within it, as in
// headscale's policyutil.ReduceFilterRules).
func (c *Compiled) dstCovers(a alias, n *nodeInfo) bool {
	switch a.kind {
	case kindSelf:
		return false
	case kindInternet:
		return n.exit
	case kindPrefix:
		return prefixCoversSource(a.prefix, n) || (n.exit && prefixWithin(a.prefix, c.internet))
	}
	return c.pol.identityMatch(a, n.user, n.Tags)
}

// Update adds or replaces a node and returns the IDs of the nodes whose
// packet filter or peer set changed (including the node itself), sorted.
func (c *Compiled) Update(n Node) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	slot, existed := c.slotOf[n.ID]
	ni := newNodeInfo(n)
	var old nodeInfo
	var oldPeers bitset
	oldBits := make([][3]bool, len(c.rules))
	if existed {
		old = c.nodes[slot]
		if sameNode(&old.Node, &n) {
			return nil
		}
		oldPeers = c.peersLocked(slot)
		for i, r := range c.rules {
			oldBits[i] = [3]bool{r.srcIdent.has(slot), r.srcAll.has(slot), r.dst.has(slot)}
		}
		c.unplaceLocked(slot)
	} else {
		slot = c.allocLocked(n.ID)
	}
	c.placeLocked(slot, ni)

	affected := c.peersLocked(slot).xor(oldPeers)
	ipsChanged := !existed || !slices.Equal(old.IPs, ni.IPs)
	for i, r := range c.rules {
		wasIdent, wasAll := oldBits[i][0], oldBits[i][1]
		isIdent, isAll := r.srcIdent.has(slot), r.srcAll.has(slot)
		if wasIdent != isIdent || (isIdent && ipsChanged) {
			r.srcIPs = nil
			if !r.wildSrc {
				affected.or(r.dst)
			}
		}
		if r.hasSelf && (wasAll || isAll) {
			// Self rules list the user's own nodes as sources.
			delete(r.selfSrc, old.user)
			delete(r.selfSrc, ni.user)
			affected.or(c.userNodes[old.user])
			affected.or(c.userNodes[ni.user])
		}
	}
	affected.set(slot)
	return c.idsLocked(affected)
}

// Remove deletes a node and returns the IDs of the remaining nodes whose
// packet filter or peer set changed, sorted. Unknown IDs change nothing.
func (c *Compiled) Remove(id int64) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	slot, ok := c.slotOf[id]
	if !ok {
		return nil
	}
	affected := c.peersLocked(slot)
	old := c.nodes[slot]
	for _, r := range c.rules {
		if r.srcIdent.has(slot) {
			r.srcIPs = nil
			if !r.wildSrc {
				affected.or(r.dst)
			}
		}
		if r.hasSelf && r.srcAll.has(slot) {
			delete(r.selfSrc, old.user)
			affected.or(c.userNodes[old.user])
		}
	}
	c.unplaceLocked(slot)
	c.nodes[slot] = nodeInfo{}
	delete(c.slotOf, id)
	c.free = append(c.free, slot)
	affected.clear(slot)
	return c.idsLocked(affected)
}

func sameNode(a, b *Node) bool {
	return a.ID == b.ID && a.User == b.User && slices.Equal(a.Tags, b.Tags) &&
		slices.Equal(a.IPs, b.IPs) && slices.Equal(a.Routes, b.Routes)
}

func (c *Compiled) idsLocked(b bitset) []int64 {
	var out []int64
	b.each(func(slot int) {
		if c.live.has(slot) {
			out = append(out, c.nodes[slot].ID)
		}
	})
	slices.Sort(out)
	return out
}

// peersLocked is the set of nodes that slot may send to or receive from.
func (c *Compiled) peersLocked(slot int) bitset {
	n := &c.nodes[slot]
	var peers bitset
	var own bitset
	if !n.tagged && n.user != "" {
		own = c.userNodes[n.user]
	}
	for _, r := range c.rules {
		if r.srcAll.has(slot) {
			peers.or(r.dst)
			if r.hasSelf {
				peers.or(own)
			}
		}
		if r.dst.has(slot) {
			peers.or(r.srcAll)
		}
		if r.hasSelf && own.has(slot) {
			peers.orAnd(own, r.srcAll)
		}
	}
	peers.clear(slot)
	return peers
}

// Visible reports whether nodes a and b appear in each other's maps: one
// of them may open connections to the other (the other needs the peer
// for return traffic).
func (c *Compiled) Visible(a, b int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	sa, oka := c.slotOf[a]
	sb, okb := c.slotOf[b]
	if !oka || !okb || sa == sb {
		return false
	}
	na, nb := &c.nodes[sa], &c.nodes[sb]
	sameUser := !na.tagged && !nb.tagged && na.user != "" && na.user == nb.user
	for _, r := range c.rules {
		if (r.srcAll.has(sa) && r.dst.has(sb)) || (r.srcAll.has(sb) && r.dst.has(sa)) {
			return true
		}
		if r.hasSelf && sameUser && (r.srcAll.has(sa) || r.srcAll.has(sb)) {
			return true
		}
	}
	return false
}

// PeersOf returns the IDs of the nodes id's map should list, sorted.
func (c *Compiled) PeersOf(id int64) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	slot, ok := c.slotOf[id]
	if !ok {
		return nil
	}
	return c.idsLocked(c.peersLocked(slot))
}

// FilterFor returns the packet filter for node id: the rules whose
// destinations are its addresses, its subnet routes or (for an exit node)
// the internet. It is nil for an unknown node and empty, meaning drop all
// inbound, for a node nothing may reach.
func (c *Compiled) FilterFor(id int64) []ctrl.FilterRule {
	c.mu.Lock()
	defer c.mu.Unlock()
	slot, ok := c.slotOf[id]
	if !ok {
		return nil
	}
	n := &c.nodes[slot]
	fb := filterBuilder{out: []ctrl.FilterRule{}, index: make(map[string]int)}
	for _, r := range c.rules {
		if r.dst.has(slot) {
			var dps []ctrl.NetPortRange
			for _, d := range r.acl.dsts {
				if d.a.kind != kindSelf && c.dstCovers(d.a, n) {
					dps = c.appendDstPorts(dps, d, n)
				}
			}
			fb.add(c.srcIPsLocked(r), r.acl.protos, dps)
		}
		if r.hasSelf && !n.tagged && n.user != "" {
			srcs := c.selfSrcIPsLocked(r, n.user)
			if len(srcs) == 0 {
				continue
			}
			var dps []ctrl.NetPortRange
			for _, d := range r.acl.dsts {
				if d.a.kind == kindSelf {
					dps = appendNodeIPs(dps, d.ports, n)
				}
			}
			fb.add(srcs, r.acl.protos, dps)
		}
	}
	return fb.out
}

func (c *Compiled) appendDstPorts(dps []ctrl.NetPortRange, d aclDst, n *nodeInfo) []ctrl.NetPortRange {
	switch d.a.kind {
	case kindWildcard:
		for _, pr := range d.ports {
			dps = append(dps, ctrl.NetPortRange{IP: "*", Ports: pr})
		}
	case kindPrefix:
		for _, pr := range d.ports {
			dps = append(dps, ctrl.NetPortRange{IP: formatPrefix(d.a.prefix), Ports: pr})
		}
	case kindInternet:
		for _, p := range c.internet {
			for _, pr := range d.ports {
				dps = append(dps, ctrl.NetPortRange{IP: p.String(), Ports: pr})
			}
		}
	default:
		dps = appendNodeIPs(dps, d.ports, n)
	}
	return dps
}

func appendNodeIPs(dps []ctrl.NetPortRange, ports []ctrl.PortRange, n *nodeInfo) []ctrl.NetPortRange {
	for _, ip := range n.IPs {
		for _, pr := range ports {
			dps = append(dps, ctrl.NetPortRange{IP: ip.String(), Ports: pr})
		}
	}
	return dps
}

// srcIPsLocked returns the rule's SrcIPs, merged into ranges, from cache.
func (c *Compiled) srcIPsLocked(r *crule) []string {
	if r.wildSrc {
		return []string{"*"}
	}
	if r.srcIPs != nil {
		return r.srcIPs
	}
	var rs []ipRange
	r.srcIdent.each(func(slot int) {
		for _, ip := range c.nodes[slot].IPs {
			rs = append(rs, ipRange{ip, ip})
		}
	})
	for _, s := range r.acl.src {
		if s.kind == kindPrefix {
			rs = append(rs, prefixRange(s.prefix))
		}
	}
	r.srcIPs = rangeStrings(rs)
	return r.srcIPs
}

// selfSrcIPsLocked is the SrcIPs of an autogroup:self rule for a node of
// user: that user's own untagged nodes the rule's sources include.
func (c *Compiled) selfSrcIPsLocked(r *crule, user string) []string {
	if srcs, ok := r.selfSrc[user]; ok {
		return srcs
	}
	var own bitset
	own.orAnd(c.userNodes[user], r.srcAll)
	var rs []ipRange
	own.each(func(slot int) {
		for _, ip := range c.nodes[slot].IPs {
			rs = append(rs, ipRange{ip, ip})
		}
	})
	if r.selfSrc == nil {
		r.selfSrc = make(map[string][]string)
	}
	r.selfSrc[user] = rangeStrings(rs)
	return r.selfSrc[user]
}

func rangeStrings(rs []ipRange) []string {
	rs = mergeRanges(rs)
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// filterBuilder merges rules with the same sources and protocols, as
// Tailscale's control server does, so the filter stays small.
type filterBuilder struct {
	out   []ctrl.FilterRule
	index map[string]int
}

func (fb *filterBuilder) add(srcs []string, protos []int, dps []ctrl.NetPortRange) {
	if len(srcs) == 0 || len(dps) == 0 {
		return
	}
	var key strings.Builder
	for _, p := range protos {
		key.WriteString(strconv.Itoa(p))
		key.WriteByte(',')
	}
	key.WriteByte('|')
	for _, s := range srcs {
		key.WriteString(s)
		key.WriteByte(',')
	}
	i, ok := fb.index[key.String()]
	if !ok {
		i = len(fb.out)
		fb.index[key.String()] = i
		fb.out = append(fb.out, ctrl.FilterRule{
			SrcIPs:  slices.Clone(srcs),
			IPProto: slices.Clone(protos),
		})
	}
	rule := &fb.out[i]
	for _, dp := range dps {
		if !slices.Contains(rule.DstPorts, dp) {
			rule.DstPorts = append(rule.DstPorts, dp)
		}
	}
}
