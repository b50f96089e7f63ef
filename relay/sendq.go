package relay

import (
	"net/netip"
	"sync"

	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// Buffer size classes of the packet pool. Almost all relayed packets are
// WireGuard datagrams below the path MTU, so the small class covers them and
// the large class exists for the rare jumbo packet.
const (
	smallBufSize = 2048
	maxBufSize   = derp.MaxPacketSize + 2*derp.KeyLen
)

// packet is one relayed datagram in a pooled buffer. It travels from the
// sender's reader goroutine to the receiver's writer, which returns it.
type packet struct {
	src  [derp.KeyLen]byte // array, so src[:] needs no allocation when written
	data []byte            // payload; cap is the size class
}

// pktPool recycles packet buffers by size class so that the forward path
// does not allocate.
type pktPool struct {
	small, large sync.Pool
}

func (p *pktPool) get(n int) *packet {
	if n <= smallBufSize {
		if pk, ok := p.small.Get().(*packet); ok {
			pk.data = pk.data[:n]
			return pk
		}
		return &packet{data: make([]byte, n, smallBufSize)}
	}
	if pk, ok := p.large.Get().(*packet); ok {
		pk.data = pk.data[:n]
		return pk
	}
	return &packet{data: make([]byte, n, maxBufSize)}
}

func (p *pktPool) put(pk *packet) {
	if cap(pk.data) == smallBufSize {
		p.small.Put(pk)
	} else {
		p.large.Put(pk)
	}
}

// ctrlKind tells which control frame a ctrlMsg becomes.
type ctrlKind uint8

const (
	ctrlPeerGone ctrlKind = iota
	ctrlPeerPresent
	ctrlKeepAlive
	ctrlRestarting
	ctrlHealth
)

// ctrlMsg is a queued non-packet frame.
type ctrlMsg struct {
	kind   ctrlKind
	peer   key.NodePublic
	reason derp.PeerGoneReason
	addr   netip.AddrPort
	flags  derp.PeerPresentFlags
	text   string
}

// sendQueue is one connection's outbound queue, filled by other
// connections' readers and drained by the connection's writer goroutine.
type sendQueue struct {
	wake           chan struct{} // cap 1: "there is something to write"
	flushedRestart chan struct{} // closed once a Restarting frame was flushed
	maxBytes       int

	mu sync.Mutex
	// Guarded by mu:
	pkts       []*packet // ring of regular packets
	head, n    int
	bytes      int       // sum of buffer capacities queued in pkts
	disco      []*packet // ring of disco packets (drop-oldest, no waiting)
	dhead, dn  int
	ctrl       []ctrlMsg
	pong       [derp.PingLen]byte
	hasPong    bool
	stalled    bool          // a sender timed out waiting; drop without waiting until progress
	space      chan struct{} // closed by the writer when it takes packets; nil when nobody waits
	closed     bool
	restartSet bool
	// writing is the socket token: set while one goroutine (the writer,
	// or a sender's reader writing inline) writes to the connection.
	writing bool
	// pending are bytes an inline write left unwritten because the socket
	// was full; the token holder handed them, and the token, to the
	// writer goroutine, which writes them before anything else.
	pending []byte
}

func newSendQueue(depth, discoDepth, maxBytes int) sendQueue {
	return sendQueue{
		wake:           make(chan struct{}, 1),
		flushedRestart: make(chan struct{}),
		maxBytes:       maxBytes,
		pkts:           make([]*packet, depth),
		disco:          make([]*packet, discoDepth),
	}
}

func (q *sendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pushCtrl queues a control frame. Control frames are never dropped: their
// number is bounded by client churn (watchers) or rate-limited (PeerGone
// not-here), and they are tiny.
func (q *sendQueue) pushCtrl(m ctrlMsg) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	if m.kind == ctrlRestarting {
		if q.restartSet {
			q.mu.Unlock()
			return
		}
		q.restartSet = true
	}
	q.ctrl = append(q.ctrl, m)
	q.mu.Unlock()
	q.signal()
}

// setPong fills the single pong slot; pings arriving faster than the
// writer answers are ignored, as upstream.
func (q *sendQueue) setPong(data [derp.PingLen]byte) {
	q.mu.Lock()
	if q.hasPong || q.closed {
		q.mu.Unlock()
		return
	}
	q.pong, q.hasPong = data, true
	q.mu.Unlock()
	q.signal()
}

// pushDisco queues a disco packet, dropping the oldest queued disco packet
// when full (fresh disco beats stale disco). It returns the packet to
// recycle, if any, and whether pk was accepted.
func (q *sendQueue) pushDisco(pk *packet) (drop *packet, ok bool) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return pk, false
	}
	if q.dn == len(q.disco) {
		drop = q.disco[q.dhead]
		q.disco[q.dhead] = nil
		q.dhead = (q.dhead + 1) % len(q.disco)
		q.dn--
	}
	q.disco[(q.dhead+q.dn)%len(q.disco)] = pk
	q.dn++
	q.mu.Unlock()
	q.signal()
	return drop, true
}

// pushResult is the outcome of tryPush.
type pushResult uint8

const (
	pushed pushResult = iota
	pushFull
	pushClosed
)

// tryPushLocked appends pk if there is room.
func (q *sendQueue) tryPushLocked(pk *packet) pushResult {
	if q.closed {
		return pushClosed
	}
	if q.n == len(q.pkts) || (q.n > 0 && q.bytes+cap(pk.data) > q.maxBytes) {
		return pushFull
	}
	q.pkts[(q.head+q.n)%len(q.pkts)] = pk
	q.n++
	q.bytes += cap(pk.data)
	return pushed
}

// popOldestLocked removes the oldest regular packet.
func (q *sendQueue) popOldestLocked() *packet {
	pk := q.pkts[q.head]
	q.pkts[q.head] = nil
	q.head = (q.head + 1) % len(q.pkts)
	q.n--
	q.bytes -= cap(pk.data)
	return pk
}

// batch is what the writer takes from the queue in one go. Its slices are
// reused between rounds.
type batch struct {
	ctrl    []ctrlMsg
	disco   []*packet
	pkts    []*packet
	pong    [derp.PingLen]byte
	hasPong bool
}

func (b *batch) empty() bool {
	return len(b.ctrl) == 0 && len(b.disco) == 0 && len(b.pkts) == 0 && !b.hasPong
}

// take moves everything queued into b and wakes senders waiting for room.
func (q *sendQueue) take(b *batch) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.takeLocked(b)
}

// hasWorkLocked reports whether anything is queued.
func (q *sendQueue) hasWorkLocked() bool {
	return q.n > 0 || q.dn > 0 || len(q.ctrl) > 0 || q.hasPong
}

// takeLocked is take with q.mu held.
func (q *sendQueue) takeLocked(b *batch) {
	b.ctrl, b.disco, b.pkts, b.hasPong = b.ctrl[:0], b.disco[:0], b.pkts[:0], false
	// Swap control slices so neither side allocates in steady state.
	b.ctrl, q.ctrl = q.ctrl, b.ctrl
	for ; q.dn > 0; q.dn-- {
		b.disco = append(b.disco, q.disco[q.dhead])
		q.disco[q.dhead] = nil
		q.dhead = (q.dhead + 1) % len(q.disco)
	}
	for q.n > 0 {
		b.pkts = append(b.pkts, q.popOldestLocked())
	}
	if q.hasPong {
		b.pong, b.hasPong, q.hasPong = q.pong, true, false
	}
	if len(b.pkts) > 0 {
		q.stalled = false
		if q.space != nil {
			close(q.space)
			q.space = nil
		}
	}
}

// shutdown marks the queue closed and returns everything still queued.
func (q *sendQueue) shutdown(b *batch) {
	q.take(b)
	q.mu.Lock()
	q.closed = true
	if q.space != nil {
		close(q.space)
		q.space = nil
	}
	q.mu.Unlock()
}
