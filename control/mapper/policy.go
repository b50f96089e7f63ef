package mapper

import (
	"encoding/binary"
	"encoding/json"
	"hash/maphash"
	"slices"
	"strings"
	"time"

	"weft.dev/weft/control/state"
	"weft.dev/weft/policy"
	"weft.dev/weft/wire/ctrl"
)

// The policy path. While a policy restricts traffic (state.Snapshot.Policy
// is not nil), sessions no longer share one delta: each is tracked (what
// peers and which filter its client has, session.sent and filterSum), and
// a flush works out per session what changed for it:
//
//   - sessions whose node a PolicyChanged names (state found their filter
//     or peers changed) are recomputed: peers that became visible are sent
//     whole in PeersChanged, peers no longer visible in PeersRemoved, and
//     the packet filter if its hash differs from the one last sent;
//   - a changed, patched or deleted node goes to the sessions that have it
//     (a word-wise AND of their peer bitmaps with the batch's), so the cost
//     is one pass over the sessions, not a rebuild of anyone's map.
//
// Sessions whose plans are equal share one encoded frame. The compiled
// policy may be a little ahead of the snapshot (state updates it in place);
// because every delta is computed against what the session was actually
// sent, a change seen early is never applied twice or lost, and its own
// PolicyChanged follows in a later batch.
//
// Entering the policy path (sessions untracked: they hold every node of
// the previous snapshot and the allow-all filter) recomputes every
// session; leaving it (the policy allows all again) sends every session
// the nodes it lacks and the allow-all filter, then stops tracking.

// plan is what one session's frame carries in a policy flush.
type plan struct {
	peers     []*state.Node // PeersChanged: newly visible or changed
	inPeers   map[int64]bool
	removed   []int64
	patches   []*state.Node
	filter    []byte // new PacketFilter JSON, nil if unchanged
	filterSum uint64
	self      bool // the session's own node changed (MapResponse.Node)
}

func (p *plan) addPeer(n *state.Node) {
	if p.inPeers == nil {
		p.inPeers = make(map[int64]bool)
	}
	if !p.inPeers[n.ID] {
		p.inPeers[n.ID] = true
		p.peers = append(p.peers, n)
	}
}

// key identifies the frame a plan needs, so equal plans share one frame.
// A plan with the session's own node is never shared.
func (p *plan) key(self int64) string {
	var k strings.Builder
	put := func(tag byte, v uint64) {
		k.WriteByte(tag)
		k.Write(binary.LittleEndian.AppendUint64(nil, v))
	}
	if p.self {
		put('s', uint64(self))
	}
	for _, n := range p.peers {
		put('c', uint64(n.ID))
	}
	for _, id := range p.removed {
		put('r', uint64(id))
	}
	for _, n := range p.patches {
		put('p', uint64(n.ID))
	}
	if p.filter != nil {
		put('f', p.filterSum)
	}
	return k.String()
}

func (b *Batcher) filterJSON(rules []ctrl.FilterRule) []byte {
	if rules == nil {
		rules = []ctrl.FilterRule{} // an unknown node: drop everything
	}
	js, err := json.Marshal(rules)
	if err != nil {
		b.log.Error("encode packet filter", "err", err)
		return []byte("[]")
	}
	return js
}

// viewOf computes node id's visible peers (those in snap) and filter.
func (b *Batcher) viewOf(id int64, snap *state.Snapshot, pc *policy.Compiled) (mapView, idSet) {
	v := mapView{peers: []*state.Node{}}
	var set idSet
	for _, pid := range pc.PeersOf(id) {
		if n := snap.Lookup(pid); n != nil {
			v.peers = append(v.peers, n)
			set.add(pid)
		}
	}
	v.filterJS = b.filterJSON(pc.FilterFor(id))
	return v, set
}

// trackLocked fixes what a registering session's first map holds and, on
// the policy path, starts tracking it. flushMu is held.
func (b *Batcher) trackLocked(sess *session, snap *state.Snapshot) mapView {
	if snap.Policy == nil {
		sess.tracked, sess.sent = false, nil
		return mapView{}
	}
	v, set := b.viewOf(sess.nodeID, snap, snap.Policy)
	sess.tracked, sess.sent, sess.filterSum = true, set, maphash.Bytes(b.seed, v.filterJS)
	return v
}

// computePolicyDelta is the policy path of a flush; see the comment at the
// top of this file. flushMu is held, which guards the sessions' tracking.
func (b *Batcher) computePolicyDelta(batch []pendingChange, snap, prev *state.Snapshot, now time.Time, live map[int64]*session) *delta {
	pc := snap.Policy
	entering, leaving := !b.tracking, pc == nil
	b.tracking = !leaving
	if len(batch) == 0 && !entering && !leaving {
		return nil
	}
	sum := summarize(batch, snap)
	allowSum := maphash.Bytes(b.seed, b.allowAllJS)
	var prevAll, snapAll idSet
	if prev != nil {
		for _, n := range prev.Nodes {
			prevAll.add(n.ID)
		}
	}
	for _, n := range snap.Nodes {
		snapAll.add(n.ID)
	}

	plans := make(map[int64]*plan)
	planFor := func(id int64) *plan {
		p := plans[id]
		if p == nil {
			p = &plan{}
			plans[id] = p
		}
		return p
	}

	// Sessions whose filter or peers may have changed.
	recompute := func(s *session) {
		self := s.nodeID
		var next idSet
		var fjs []byte
		if leaving {
			next = slices.Clone(snapAll)
			fjs = b.allowAllJS
		} else {
			for _, id := range pc.PeersOf(self) {
				if snapAll.has(id) {
					next.add(id)
				}
			}
			fjs = b.filterJSON(pc.FilterFor(self))
		}
		next.del(self)
		had, hadSum := s.sent, s.filterSum
		if !s.tracked {
			had, hadSum = prevAll, allowSum
		}
		next.eachNotIn(had, func(id int64) {
			planFor(self).addPeer(snap.Lookup(id))
		})
		had.eachNotIn(next, func(id int64) {
			if id != self {
				planFor(self).removed = append(planFor(self).removed, id)
			}
		})
		if fs := maphash.Bytes(b.seed, fjs); fs != hadSum {
			p := planFor(self)
			p.filter, p.filterSum = fjs, fs
		}
		s.sent, s.filterSum, s.tracked = next, maphash.Bytes(b.seed, fjs), true
	}
	for id, s := range live {
		if snapAll.has(id) && (entering || leaving || !s.tracked || sum.affected.has(id)) {
			recompute(s)
		}
	}

	// Changed, patched and deleted nodes go to the sessions that have
	// them: what each client was sent is the truth here, not the compiled
	// policy, which may already be ahead of this snapshot.
	var chg, pat, del idSet
	for _, n := range sum.changed {
		chg.add(n.ID)
	}
	for _, n := range sum.patches {
		pat.add(n.ID)
	}
	for _, id := range sum.removed {
		del.add(id)
	}
	for _, s := range live {
		s.sent.eachIn(chg, func(id int64) {
			planFor(s.nodeID).addPeer(snap.Lookup(id))
		})
		s.sent.eachIn(pat, func(id int64) {
			if p := plans[s.nodeID]; p != nil && p.inPeers[id] {
				return // sent whole already
			}
			p := planFor(s.nodeID)
			p.patches = append(p.patches, snap.Lookup(id))
		})
		s.sent.eachIn(del, func(id int64) {
			s.sent.del(id)
			p := planFor(s.nodeID)
			p.removed = append(p.removed, id)
		})
	}
	for id := range sum.full {
		if live[id] != nil && snapAll.has(id) {
			planFor(id).self = true
		}
	}

	// One frame per distinct plan.
	fb := &frameBuilder{b: b, sum: sum, snap: snap, now: now}
	d := &delta{custom: make(map[int64]*frame), shared: fb.build(nil, 0)}
	byKey := make(map[string]*frame)
	for id, p := range plans {
		cmpID := func(x, y *state.Node) int { return cmpInt64(x.ID, y.ID) }
		slices.SortFunc(p.peers, cmpID)
		slices.Sort(p.removed)
		slices.SortFunc(p.patches, cmpID)
		k := p.key(id)
		f, ok := byKey[k]
		if !ok {
			f = fb.build(p, id)
			byKey[k] = f
		}
		d.custom[id] = f
	}
	b.addDeletedFrames(d, sum.removedOld, now)
	if leaving {
		for _, s := range live {
			s.tracked, s.sent = false, nil
		}
	}
	return d
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// frameBuilder encodes the frames of one policy flush, computing the
// tailnet-wide parts (DNS, user profiles) at most once.
type frameBuilder struct {
	b     *Batcher
	sum   *summary
	snap  *state.Snapshot
	now   time.Time
	dns   *ctrl.DNSConfig
	users []ctrl.UserProfile
}

func (fb *frameBuilder) userProfiles() []ctrl.UserProfile {
	if fb.users == nil {
		fb.users = fb.b.userProfiles()
	}
	return fb.users
}

// build encodes plan p of session self (nil p: the frame for sessions
// without a plan). It returns nil when there is nothing to send.
func (fb *frameBuilder) build(p *plan, self int64) *frame {
	b := fb.b
	resp := ctrl.MapResponse{}
	var peerJS [][]byte
	var filter []byte
	if p != nil {
		for _, n := range p.peers {
			peerJS = append(peerJS, b.peerJSONFor(n, fb.now))
		}
		for _, id := range p.removed {
			resp.PeersRemoved = append(resp.PeersRemoved, ctrl.NodeID(id))
		}
		for _, n := range p.patches {
			resp.PeersChangedPatch = append(resp.PeersChangedPatch, patchFor(n))
		}
		if n := fb.snap.Lookup(self); p.self && n != nil {
			resp.Node = b.selfNode(n, fb.now)
		}
		filter = p.filter
	}
	if fb.sum.dns {
		if fb.dns == nil {
			fb.dns = b.dnsConfig()
		}
		resp.DNSConfig = fb.dns
	}
	if fb.sum.users || len(peerJS) > 0 || resp.Node != nil {
		resp.UserProfiles = fb.userProfiles()
	}
	if len(peerJS) == 0 && resp.PeersRemoved == nil && resp.PeersChangedPatch == nil &&
		resp.DNSConfig == nil && resp.Node == nil && filter == nil && !fb.sum.users {
		return nil
	}
	js, err := json.Marshal(resp)
	if err != nil {
		b.log.Error("encode delta", "err", err)
		return nil
	}
	if filter != nil {
		js = spliceRaw(js, "PacketFilter", filter)
	}
	return newFrame(b.enc, splice(js, "PeersChanged", peerJS))
}
