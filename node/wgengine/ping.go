package wgengine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/internal/clock"
	"weft.dev/weft/node/engine"
	"weft.dev/weft/wire/tsmp"
)

// pingTimeout bounds a TSMP or ICMP ping whose context has no deadline
// (upstream's 10 s expiry of a pending pong callback).
const pingTimeout = 10 * time.Second

// errNoReply is the cause of a ping that ran into pingTimeout.
var errNoReply = fmt.Errorf("no reply within %v: %w", pingTimeout, context.DeadlineExceeded)

// pinger sends the engine's TSMP and ICMP pings into the tunnel and
// answers peers' TSMP pings (tstun and userspaceEngine upstream). Replies
// to its own pings are taken out of the inbound path by filter.Write,
// before the packet filter and before the host sees them; other ICMP
// replies pass on to the host. (tailscaled also sends a TSMP disco key
// advertisement after each TSMP ping, for its cached network maps; weftd
// has no such cache and sends none.)
type pinger struct {
	log   *slog.Logger
	clock clock.Clock
	// send injects a packet as if the host had sent it (filter.inject).
	send func(pkt []byte) error

	// echoes mirrors len(echo), so that filter.Write looks at inbound ICMP
	// only while echo pings are outstanding.
	echoes atomic.Int32

	mu sync.Mutex
	// guarded by mu:
	tsmp map[[8]byte]*pendingPing // by ping data
	echo map[echoKey]*pendingPing
}

// pendingPing is one outstanding ping.
type pendingPing struct {
	peer netip.Addr
	data [8]byte
	done chan pong // 1-buffered; receives at most one pong
}

type pong struct {
	at          time.Time
	peerAPIPort uint16
}

// echoKey identifies the reply to one echo request.
type echoKey struct {
	peer    netip.Addr
	id, seq uint16
}

func newPinger(log *slog.Logger, clk clock.Clock, send func([]byte) error) *pinger {
	return &pinger{
		log: log, clock: clk, send: send,
		tsmp: map[[8]byte]*pendingPing{},
		echo: map[echoKey]*pendingPing{},
	}
}

// ping sends one TSMP or ICMP echo request from src to dst and waits for
// the reply, ctx's end, or pingTimeout when ctx has no deadline. It returns
// the round-trip time and, for TSMP, the PeerAPI port the pong carried.
// The pending entry is gone when ping returns, whatever happened.
func (p *pinger) ping(ctx context.Context, typ engine.PingType, src, dst netip.Addr) (time.Duration, uint16, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		t := p.clock.AfterFunc(pingTimeout, func() { cancel(errNoReply) })
		defer t.Stop()
		defer cancel(nil)
	}
	var rnd [14]byte
	rand.Read(rnd[:])
	pp := &pendingPing{peer: dst, data: [8]byte(rnd[:8]), done: make(chan pong, 1)}
	ipID := uint32(binary.BigEndian.Uint16(rnd[8:10]))
	hdr := tsmp.IPHeader{Src: src, Dst: dst, ID: ipID}
	var pkt []byte
	var err error
	switch typ {
	case engine.PingTSMP:
		pkt, err = tsmp.Ping{IP: hdr, Data: pp.data}.AppendMarshal(nil)
		if err == nil {
			defer p.add(pp, pp.data, nil)()
		}
	case engine.PingICMP:
		k := echoKey{peer: dst, id: binary.BigEndian.Uint16(rnd[10:12]), seq: binary.BigEndian.Uint16(rnd[12:14])}
		pkt, err = tsmp.Echo{IP: hdr, ID: k.id, Seq: k.seq, Data: pp.data[:]}.AppendMarshal(nil)
		if err == nil {
			defer p.add(pp, [8]byte{}, &k)()
		}
	default:
		err = fmt.Errorf("not a TSMP or ICMP ping type")
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%s ping %v: %w", typ, dst, err)
	}
	start := p.clock.Now()
	if err := p.send(pkt); err != nil {
		return 0, 0, fmt.Errorf("%s ping %v: %w", typ, dst, err)
	}
	select {
	case r := <-pp.done:
		return r.at.Sub(start), r.peerAPIPort, nil
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("%s ping %v: %w", typ, dst, context.Cause(ctx))
	}
}

// add registers pp under its TSMP data or, with k, as an echo, and returns
// the function that removes it.
func (p *pinger) add(pp *pendingPing, data [8]byte, k *echoKey) (remove func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k != nil {
		p.echo[*k] = pp
		p.echoes.Store(int32(len(p.echo)))
		return func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.echo[*k] == pp {
				delete(p.echo, *k)
				p.echoes.Store(int32(len(p.echo)))
			}
		}
	}
	p.tsmp[data] = pp
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.tsmp[data] == pp {
			delete(p.tsmp, data)
		}
	}
}

// pending is the number of outstanding pings (for tests).
func (p *pinger) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tsmp) + len(p.echo)
}

// inboundTSMP handles a TSMP packet from a peer: a ping is answered with a
// pong (PeerAPI port 0: weftd serves no PeerAPI yet), a pong to one of our
// pings completes it. Everything else (rejects, disco key advertisements,
// stray pongs, garbage) is dropped; TSMP never reaches the host.
func (p *pinger) inboundTSMP(pkt []byte) {
	m, err := tsmp.Parse(pkt)
	if err != nil {
		p.log.Debug("wgengine: dropping inbound TSMP", "err", err)
		return
	}
	switch m := m.(type) {
	case tsmp.Ping:
		b, err := m.Pong(0).AppendMarshal(nil)
		if err == nil {
			err = p.send(b)
		}
		if err != nil {
			p.log.Debug("wgengine: answering TSMP ping", "from", m.IP.Src, "err", err)
		}
	case tsmp.Pong:
		at := p.clock.Now()
		p.mu.Lock()
		pp := p.tsmp[m.Data]
		if pp == nil || pp.peer != m.IP.Src {
			p.mu.Unlock()
			return
		}
		delete(p.tsmp, m.Data)
		p.mu.Unlock()
		p.log.Debug("wgengine: TSMP pong", "from", m.IP.Src, "peerapi_port", m.PeerAPIPort)
		pp.done <- pong{at: at, peerAPIPort: m.PeerAPIPort}
	}
}

// echoOutstanding reports whether any ICMP ping awaits its reply; it is the
// only cost filter.Write adds to ICMP traffic otherwise.
func (p *pinger) echoOutstanding() bool { return p.echoes.Load() > 0 }

// inboundEcho takes pkt if it is the echo reply to one of our pings (same
// peer, identifier, sequence number and data) and reports whether it did.
func (p *pinger) inboundEcho(pkt []byte) bool {
	e, err := tsmp.ParseEcho(pkt)
	if err != nil || !e.Reply {
		return false
	}
	at := p.clock.Now()
	k := echoKey{peer: e.IP.Src, id: e.ID, seq: e.Seq}
	p.mu.Lock()
	pp := p.echo[k]
	if pp == nil || !bytes.Equal(e.Data, pp.data[:]) {
		p.mu.Unlock()
		return false
	}
	delete(p.echo, k)
	p.echoes.Store(int32(len(p.echo)))
	p.mu.Unlock()
	pp.done <- pong{at: at}
	return true
}

// selfAddrFor is the node's own tailnet address to ping dst from: the
// first single address of dst's family (mySelfIPMatchingFamily upstream).
func selfAddrFor(addrs []netip.Prefix, dst netip.Addr) (netip.Addr, error) {
	for _, a := range addrs {
		if a.IsSingleIP() && a.Addr().Is4() == dst.Is4() {
			return a.Addr(), nil
		}
	}
	if len(addrs) == 0 {
		return netip.Addr{}, errors.New("this node has no tailnet address yet")
	}
	fam := "IPv6"
	if dst.Is4() {
		fam = "IPv4"
	}
	return netip.Addr{}, fmt.Errorf("this node has no tailnet %s address to ping %v from", fam, dst)
}

// pingInTunnel is Engine.Ping for TSMP and ICMP: the request travels
// through WireGuard like host traffic. As upstream, the result names no
// endpoint or DERP region (the CLI prints "via TSMP" or "via ICMP").
func (e *Engine) pingInTunnel(ctx context.Context, addrs []netip.Prefix, typ engine.PingType, res engine.PingResult) (engine.PingResult, error) {
	src, err := selfAddrFor(addrs, res.IP)
	if err != nil {
		err = fmt.Errorf("%s ping %v: %w", typ, res.IP, err)
		res.Err = err.Error()
		return res, err
	}
	lat, port, err := e.pings.ping(ctx, typ, src, res.IP)
	if err != nil {
		res.Err = err.Error()
		return res, err
	}
	res.Latency, res.PeerAPIPort = lat, port
	return res, nil
}
