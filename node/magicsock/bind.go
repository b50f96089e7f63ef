package magicsock

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"weft.dev/weft/wire/disco"
	"weft.dev/weft/wire/key"
	"weft.dev/weft/wire/stun"
)

// Bind returns the conn.Bind to give wireguard-go. Its endpoints are peers
// named by their hex node key (set "endpoint=<hex>" in the UAPI config).
func (c *Conn) Bind() conn.Bind { return c.bind }

// bind is the wireguard-go face of a Conn. Closing it only stops the
// receive functions; the sockets and DERP connections belong to the Conn
// (wireguard-go closes and reopens its bind on every Up).
type bind struct {
	c *Conn

	mu sync.Mutex
	// guarded by mu:
	open   bool
	closed chan struct{} // closed while the bind is closed
}

func newBind(c *Conn) *bind {
	b := &bind{c: c, closed: make(chan struct{})}
	close(b.closed)
	return b
}

func (b *bind) closedChan() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Open implements conn.Bind. port is ignored: the Conn's sockets are bound
// already (as tailscaled's connBind does).
func (b *bind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	if b.c.ctx.Err() != nil {
		return nil, 0, net.ErrClosed
	}
	b.open = true
	b.closed = make(chan struct{})
	var fns []conn.ReceiveFunc
	for _, pc := range []PacketConn{b.c.pconn4, b.c.pconn6} {
		if pc != nil {
			pc.SetReadDeadline(time.Time{})
			fns = append(fns, b.receiveUDP(pc, pc == b.c.pconn6, b.closed))
		}
	}
	fns = append(fns, b.receiveDERP(b.closed))
	return fns, b.c.LocalPort(), nil
}

// Close implements conn.Bind: the receive functions return net.ErrClosed.
func (b *bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return nil
	}
	b.open = false
	close(b.closed)
	for _, pc := range []PacketConn{b.c.pconn4, b.c.pconn6} {
		if pc != nil {
			pc.SetReadDeadline(time.Unix(1, 0)) // wake blocked readers
		}
	}
	return nil
}

// SetMark implements conn.Bind; routing loops are avoided elsewhere.
func (b *bind) SetMark(uint32) error { return nil }

// BatchSize implements conn.Bind.
func (b *bind) BatchSize() int { return conn.IdealBatchSize }

// ParseEndpoint implements conn.Bind: s is a peer's hex node key.
func (b *bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("magicsock: endpoint %q is not a hex node key", s)
	}
	k := key.NodePublicFromRaw32([32]byte(raw))
	ep := b.c.peerByKey(k)
	if ep == nil {
		return nil, fmt.Errorf("magicsock: endpoint %s is not a peer in the network map", k.ShortString())
	}
	return ep, nil
}

// Send implements conn.Bind.
func (b *bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	switch e := ep.(type) {
	case *endpoint:
		return b.c.sendToPeer(e, bufs)
	case *lazyEndpoint:
		return b.c.sendUDP(e.src, bufs)
	}
	return conn.ErrWrongEndpointType
}

var errNoPath = errors.New("magicsock: no UDP or DERP path to peer")

func (c *Conn) sendToPeer(ep *endpoint, bufs [][]byte) error {
	c.mu.Lock()
	if c.closed || c.peers[ep.nodeKey] != ep {
		c.mu.Unlock()
		return net.ErrClosed
	}
	p, out := ep.addrForSendLocked(c.clock.Now())
	c.mu.Unlock()
	if len(out) > 0 {
		c.sendDisco(out)
	}
	sent := false
	var err error
	if p.udp.IsValid() {
		if err = c.sendUDP(p.udp, bufs); err == nil {
			sent = true
		}
	}
	if p.region != 0 {
		for _, b := range bufs {
			if c.sendDERP(p.region, ep.nodeKey, b) {
				sent = true
			}
		}
	}
	if !sent {
		c.stats.sendNoPath.Add(1)
		if !p.udp.IsValid() && p.region == 0 {
			c.notePathlessSend(ep, bufs)
		}
		if err == nil {
			err = errNoPath
		}
		return err
	}
	return nil
}

// packet kinds on the UDP socket (§4.1, packetLooksLike upstream).
type pktKind int

const (
	pktWireGuard pktKind = iota
	pktSTUN
	pktDisco
	pktGeneve // peer-relay traffic: not implemented, dropped
	pktJunk
)

func classify(b []byte) pktKind {
	if stun.Is(b) && b[1] == 0x01 {
		return pktSTUN
	}
	if len(b) >= 8 && b[0]&0xc0 == 0 && b[1]&0x3f == 0 && b[7] == 0 {
		if pt := binary.BigEndian.Uint16(b[2:4]); pt == 0x7a11 || pt == 0x7a12 {
			return pktGeneve
		}
	}
	if disco.Looks(b) {
		return pktDisco
	}
	// WireGuard messages are types 1–4 followed by three zero bytes;
	// anything else would only make wireguard-go log.
	if len(b) >= 4 && b[0] >= 1 && b[0] <= 4 && b[1] == 0 && b[2] == 0 && b[3] == 0 {
		return pktWireGuard
	}
	return pktJunk
}

func (b *bind) receiveUDP(pc PacketConn, v6 bool, closed chan struct{}) conn.ReceiveFunc {
	c := b.c
	srcs := make([]netip.AddrPort, conn.IdealBatchSize)
	return func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		if len(srcs) < len(packets) {
			srcs = make([]netip.AddrPort, len(packets))
		}
		for {
			n, err := pc.ReadBatch(packets, sizes, srcs[:len(packets)])
			if err != nil {
				select {
				case <-closed:
					return 0, net.ErrClosed
				default:
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue // a deadline left over from an earlier Close
				}
				return 0, err
			}
			wg := 0
			var lastSrc netip.AddrPort
			var lastEp *endpoint
			var now time.Time
			for i := range n {
				pkt := packets[i][:sizes[i]]
				switch classify(pkt) {
				case pktWireGuard:
					src := srcs[i]
					if src != lastSrc || lastEp == nil {
						lastSrc, lastEp = src, c.peerByAddr(src)
						if lastEp != nil {
							if now.IsZero() {
								now = c.clock.Now()
							}
							lastEp.noteHeard(now)
						}
					}
					if lastEp != nil {
						eps[i] = lastEp
					} else {
						// Unknown source: wireguard-go identifies the peer by
						// key or receiver index; replies go to the peer's
						// endpoint (roaming is disabled), except cookie
						// replies, which use this one.
						eps[i] = &lazyEndpoint{src: src}
					}
					wg++
					continue
				case pktSTUN:
					c.handleSTUN(pkt, v6)
				case pktDisco:
					c.handleDisco(pkt, srcs[i], 0, key.NodePublic{})
				default:
					c.stats.recvNotWG.Add(1)
				}
				sizes[i] = 0
			}
			if wg > 0 {
				return n, nil
			}
		}
	}
}

func (b *bind) receiveDERP(closed chan struct{}) conn.ReceiveFunc {
	c := b.c
	return func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		select {
		case dp := <-c.derpRecv:
			sizes[0] = copy(packets[0], dp.pkt)
			eps[0] = dp.ep
			dp.ack <- struct{}{}
			return 1, nil
		case <-closed:
			return 0, net.ErrClosed
		}
	}
}

func (c *Conn) peerByAddr(src netip.AddrPort) *endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byAddr[src]
}

// lazyEndpoint is the source of a WireGuard packet from an address not yet
// tied to a peer.
type lazyEndpoint struct{ src netip.AddrPort }

func (e *lazyEndpoint) ClearSrc()           {}
func (e *lazyEndpoint) SrcToString() string { return "" }
func (e *lazyEndpoint) DstToString() string { return e.src.String() }
func (e *lazyEndpoint) DstToBytes() []byte {
	b, _ := e.src.MarshalBinary()
	return b
}
func (e *lazyEndpoint) DstIP() netip.Addr { return e.src.Addr() }
func (e *lazyEndpoint) SrcIP() netip.Addr { return netip.Addr{} }
