package mapper

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"runtime"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"weft.dev/weft/control/state"
	"weft.dev/weft/internal/clock"
	"weft.dev/weft/wire/ctrl"
)

// DNSSettings are the tailnet-wide DNS settings.
type DNSSettings struct {
	MagicDNS      bool
	Nameservers   []string // global resolvers; empty keeps the node's own DNS
	SearchDomains []string
}

// Config configures a Batcher.
type Config struct {
	Logger *slog.Logger
	Clock  clock.Clock
	// Domain is the MagicDNS base domain, e.g. "weft.internal".
	Domain string
	DNS    DNSSettings
	// DERPMap returns the current DERP map.
	DERPMap func() *ctrl.DERPMap
	// Window is how long changes are collected before a flush (default
	// 20 ms). It grows by WindowPerSession for every open session: a flush
	// costs one write per session, so larger tailnets batch more to keep
	// that cost bounded (5,000 sessions: 20 ms + 150 ms).
	Window time.Duration
	// WindowPerSession is the per-session growth of Window (default 30 µs).
	WindowPerSession time.Duration
	// KeepAlive is the idle time before a keep-alive frame (default 50 s,
	// plus up to 8 s of jitter; the client gives up after 120 s).
	KeepAlive time.Duration
	// QueueLen is the number of frames a session may fall behind before it
	// is closed (the client then reconnects and gets a full map).
	QueueLen int
	// OfflineGrace delays marking a node offline after its stream ends, so
	// a quick reconnect does not flap peers (default 5 s).
	OfflineGrace time.Duration
	Registry     prometheus.Registerer
}

// Batcher owns the long-poll sessions. See the package doc.
type Batcher struct {
	cfg      Config
	log      *slog.Logger
	st       *state.State
	enc      *zstd.Encoder
	peerJSON sync.Map // node ID → *cachedJSON
	bufs     bufPool  // full-map buffers, recycled after each write
	blocks   blockCache
	keep     *frame // the keep-alive frame, shared
	metrics  *metrics

	flushMu sync.Mutex // serialises flushes and session registration
	// Guarded by flushMu: whether the last flush ran the policy path, so
	// that sessions track what they were sent (see policy.go).
	tracking bool
	seed     maphash.Seed // for filter hashes; immutable
	// allowAllJS is ctrl.AllowAll() encoded; immutable.
	allowAllJS []byte

	mu sync.Mutex
	// guarded by mu:
	pending  []pendingChange
	timer    clock.Timer // armed flush, nil if none
	sessions map[int64]*session
	snap     *state.Snapshot
	genCh    chan struct{} // closed and replaced at every flush
	offline  map[int64]clock.Timer
}

type pendingChange struct {
	c  state.Change
	at time.Time
}

type cachedJSON struct {
	n  *state.Node
	js []byte
}

// New returns a Batcher; call Start with the State before serving.
func New(cfg Config) (*Batcher, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Window == 0 {
		cfg.Window = 20 * time.Millisecond
	}
	if cfg.WindowPerSession == 0 {
		cfg.WindowPerSession = 30 * time.Microsecond
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = 50 * time.Second
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 256
	}
	if cfg.OfflineGrace == 0 {
		cfg.OfflineGrace = 5 * time.Second
	}
	if cfg.Domain == "" {
		return nil, errors.New("mapper: no MagicDNS domain")
	}
	if cfg.DERPMap == nil {
		cfg.DERPMap = func() *ctrl.DERPMap { return &ctrl.DERPMap{Regions: map[int]*ctrl.DERPRegion{}} }
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		// Peers' JSON repeats within a few entries; a 512 KiB window
		// compresses as well as the 8 MiB default and keeps each
		// encoder's history small.
		zstd.WithWindowSize(512<<10),
		zstd.WithLowerEncoderMem(true),
		zstd.WithZeroFrames(true))
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	b := &Batcher{
		cfg:      cfg,
		log:      cfg.Logger,
		enc:      enc,
		metrics:  newMetrics(cfg.Registry),
		sessions: make(map[int64]*session),
		genCh:    make(chan struct{}),
		offline:  make(map[int64]clock.Timer),
		seed:     maphash.MakeSeed(),
	}
	b.keep = newFrame(enc, []byte(`{"KeepAlive":true}`))
	if b.allowAllJS, err = json.Marshal(ctrl.AllowAll()); err != nil {
		return nil, fmt.Errorf("encode allow-all filter: %w", err)
	}
	return b, nil
}

// OnChange is the state.Config.OnChange callback. It runs under the state
// lock, so it only queues the changes and arms the flush timer.
func (b *Batcher) OnChange(cs []state.Change) {
	now := b.cfg.Clock.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range cs {
		b.pending = append(b.pending, pendingChange{c, now})
	}
	b.armLocked(b.cfg.Window + time.Duration(len(b.sessions))*b.cfg.WindowPerSession)
}

func (b *Batcher) armLocked(d time.Duration) {
	if b.timer == nil {
		b.timer = b.cfg.Clock.AfterFunc(d, b.flush)
	}
}

// Start attaches the state and takes the first snapshot.
func (b *Batcher) Start(st *state.State) {
	b.st = st
	b.flush()
}

// flush turns the pending changes into frames and queues them. See the
// package doc for why the snapshot is taken with the drain. flushMu is
// held throughout, so no session registers between the drain and the
// enqueue.
func (b *Batcher) flush() {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	var batch []pendingChange
	var snap, prev *state.Snapshot
	var live map[int64]*session
	b.st.SnapshotWith(func(s *state.Snapshot) {
		b.mu.Lock()
		batch, b.pending = b.pending, nil
		live = maps.Clone(b.sessions)
		prev = b.snap
		if b.timer != nil {
			b.timer.Stop()
			b.timer = nil
		}
		b.mu.Unlock()
		snap = s
	})
	now := b.cfg.Clock.Now()
	var d *delta
	if snap.Policy != nil || b.tracking {
		d = b.computePolicyDelta(batch, snap, prev, now, live)
	} else {
		d = b.computeDelta(batch, snap, now, live)
	}

	b.mu.Lock()
	b.snap = snap
	if d != nil {
		for id, s := range b.sessions {
			f, ok := d.custom[id]
			if !ok {
				f = d.shared
			}
			if f != nil {
				s.enqueue(f)
			}
		}
	}
	close(b.genCh)
	b.genCh = make(chan struct{})
	b.mu.Unlock()

	done := b.cfg.Clock.Now()
	for _, p := range batch {
		b.metrics.deltaLatency.Observe(done.Sub(p.at).Seconds())
	}
	if len(batch) > 0 {
		b.metrics.flushes.Inc()
	}
}

// delta is the result of one flush: the frame for uninvolved sessions and
// frames for sessions whose own node is in the batch (nil: send nothing).
type delta struct {
	shared *frame
	custom map[int64]*frame
}

// summary is a batch of changes reduced to what frames carry.
type summary struct {
	order      []int64        // nodes in the batch, in first-change order
	full       map[int64]bool // nodes with a whole-node change
	changed    []*state.Node  // added or changed nodes, as in the snapshot
	removed    []int64
	removedOld []*state.Node // the last version of deleted nodes
	patches    []*state.Node
	dns, users bool
	// affected are the nodes whose filter or peers a policy change touched.
	affected idSet
}

func summarize(batch []pendingChange, snap *state.Snapshot) *summary {
	type agg struct {
		full, patch bool
		old         *state.Node
	}
	sum := &summary{full: make(map[int64]bool)}
	nodes := make(map[int64]*agg)
	for _, p := range batch {
		switch p.c.Kind {
		case state.DNSChanged:
			sum.dns = true
			continue
		case state.UserChanged:
			sum.users = true
			continue
		case state.PolicyChanged:
			for _, id := range p.c.Affected {
				sum.affected.add(id)
			}
			continue
		}
		a := nodes[p.c.NodeID]
		if a == nil {
			a = &agg{old: p.c.Old}
			nodes[p.c.NodeID] = a
			sum.order = append(sum.order, p.c.NodeID)
		}
		switch p.c.Kind {
		case state.NodeAdded, state.NodeChanged:
			a.full = true
		case state.NodePatched, state.NodeOnline:
			a.patch = true
		}
	}
	for _, id := range sum.order {
		a := nodes[id]
		if a.full {
			sum.full[id] = true
		}
		cur := snap.Lookup(id)
		switch {
		case cur == nil:
			sum.removed = append(sum.removed, id)
			if a.old != nil {
				sum.removedOld = append(sum.removedOld, a.old)
			}
		case a.full:
			sum.changed = append(sum.changed, cur)
		case a.patch:
			sum.patches = append(sum.patches, cur)
		}
	}
	return sum
}

// computeDelta is the allow-all path: one shared frame for every session
// not in the batch. live holds the nodes with a session: only they need
// frames of their own (a session opened meanwhile starts from this flush's
// snapshot anyway).
func (b *Batcher) computeDelta(batch []pendingChange, snap *state.Snapshot, now time.Time, live map[int64]*session) *delta {
	if len(batch) == 0 {
		return nil
	}
	sum := summarize(batch, snap)
	order, changed, removed, patches := sum.order, sum.changed, sum.removed, sum.patches
	dnsChanged, usersChanged := sum.dns, sum.users

	d := &delta{custom: make(map[int64]*frame)}
	build := func(self int64) *frame {
		resp := ctrl.MapResponse{}
		var peerJS [][]byte
		for _, n := range changed {
			if n.ID != self {
				peerJS = append(peerJS, b.peerJSONFor(n, now))
			}
		}
		for _, id := range removed {
			if id != self {
				resp.PeersRemoved = append(resp.PeersRemoved, ctrl.NodeID(id))
			}
		}
		for _, n := range patches {
			if n.ID != self {
				resp.PeersChangedPatch = append(resp.PeersChangedPatch, patchFor(n))
			}
		}
		if dnsChanged {
			resp.DNSConfig = b.dnsConfig()
		}
		if usersChanged || len(peerJS) > 0 {
			resp.UserProfiles = b.userProfiles()
		}
		if self != 0 {
			if n := snap.Lookup(self); n != nil && sum.full[self] {
				resp.Node = b.selfNode(n, now)
				if resp.UserProfiles == nil {
					resp.UserProfiles = b.userProfiles()
				}
			}
		}
		if len(peerJS) == 0 && resp.PeersRemoved == nil && resp.PeersChangedPatch == nil &&
			resp.DNSConfig == nil && resp.Node == nil && !usersChanged {
			return nil
		}
		js, err := json.Marshal(resp)
		if err != nil {
			b.log.Error("encode delta", "err", err)
			return nil
		}
		return newFrame(b.enc, splice(js, "PeersChanged", peerJS))
	}
	d.shared = build(0)
	for _, id := range order {
		if live[id] != nil && snap.Lookup(id) != nil {
			d.custom[id] = build(id)
		}
	}
	b.addDeletedFrames(d, sum.removedOld, now)
	return d
}

// addDeletedFrames tells a deleted node's own session that its key is no
// longer valid, then ends its stream: the client falls back to needing a
// login.
func (b *Batcher) addDeletedFrames(d *delta, removedOld []*state.Node, now time.Time) {
	for _, old := range removedOld {
		n := b.selfNode(old, now)
		n.KeyExpiry = now.Add(-time.Second).UTC()
		n.Expired = true
		js, err := json.Marshal(ctrl.MapResponse{Node: n})
		if err != nil {
			continue
		}
		f := newFrame(b.enc, js)
		f.closeAfter = true
		d.custom[old.ID] = f
	}
}

// peerJSONFor returns n's peer encoding, cached per node version.
func (b *Batcher) peerJSONFor(n *state.Node, now time.Time) []byte {
	if v, ok := b.peerJSON.Load(n.ID); ok {
		if c := v.(*cachedJSON); c.n == n {
			return c.js
		}
	}
	js, err := json.Marshal(b.wireNode(n, now))
	if err != nil {
		b.log.Error("encode node", "node", n.ID, "err", err)
		return []byte("null")
	}
	b.peerJSON.Store(n.ID, &cachedJSON{n: n, js: js})
	return js
}

// splice appends "field":[items...] to the JSON object js. Appending keeps
// the small fields (Node first) at the front of the frame.
func splice(js []byte, field string, items [][]byte) []byte {
	return spliceAlloc(js, field, items, func(n int) []byte { return make([]byte, 0, n) })
}

// spliceAlloc is splice with the output buffer from alloc.
func spliceAlloc(js []byte, field string, items [][]byte, alloc func(int) []byte) []byte {
	if len(items) == 0 {
		return js
	}
	size := len(js) + len(field) + 8
	for _, it := range items {
		size += len(it) + 1
	}
	out := alloc(size)
	out = append(out, js[:len(js)-1]...) // without the closing '}'
	if len(js) > 2 {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, field...)
	out = append(out, `":[`...)
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
	}
	return append(out, ']', '}')
}

// mapView is what one node's map holds under the policy: its visible peers
// and its packet filter.
type mapView struct {
	peers    []*state.Node // nil: every other node (allow-all)
	filterJS []byte        // nil: allow-all
}

// spliceRaw appends "field":raw to the JSON object js.
func spliceRaw(js []byte, field string, raw []byte) []byte {
	out := make([]byte, 0, len(js)+len(field)+len(raw)+4)
	out = append(out, js[:len(js)-1]...)
	if len(js) > 2 {
		out = append(out, ',')
	}
	out = append(out, '"')
	out = append(out, field...)
	out = append(out, '"', ':')
	out = append(out, raw...)
	return append(out, '}')
}

// fullMap builds the first frame of a session from snap.
func (b *Batcher) fullMap(selfID int64, snap *state.Snapshot, v mapView, now time.Time) ([]byte, error) {
	js, err := b.fullMapHead(selfID, snap, v, now)
	if err != nil {
		return nil, err
	}
	var peers [][]byte
	if v.peers == nil {
		peers = make([][]byte, 0, len(snap.Nodes))
		for _, n := range snap.Nodes {
			if n.ID != selfID {
				peers = append(peers, b.peerJSONFor(n, now))
			}
		}
	} else {
		peers = make([][]byte, 0, len(v.peers))
		for _, n := range v.peers {
			peers = append(peers, b.peerJSONFor(n, now))
		}
	}
	return spliceAlloc(js, "Peers", peers, b.bufs.get), nil
}

// fullMapHead is a session's first frame without its peers.
func (b *Batcher) fullMapHead(selfID int64, snap *state.Snapshot, v mapView, now time.Time) ([]byte, error) {
	self := snap.Lookup(selfID)
	if self == nil {
		return nil, fmt.Errorf("node %d: %w", selfID, state.ErrNotFound)
	}
	f := false
	nowUTC := now.UTC().Truncate(time.Second)
	resp := ctrl.MapResponse{
		Node:            b.selfNode(self, now),
		DERPMap:         b.cfg.DERPMap(),
		DNSConfig:       b.dnsConfig(),
		Domain:          b.cfg.Domain,
		CollectServices: &f,
		UserProfiles:    b.userProfiles(),
		ControlTime:     &nowUTC,
		Debug:           &ctrl.Debug{DisableLogTail: true},
	}
	if v.filterJS == nil {
		resp.PacketFilter = ctrl.AllowAll()
	}
	js, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode map for node %d: %w", selfID, err)
	}
	if v.filterJS != nil {
		js = spliceRaw(js, "PacketFilter", v.filterJS)
	}
	return js, nil
}
