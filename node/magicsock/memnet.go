package magicsock

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// MemNetwork is an in-memory UDP network shared by several hosts, for
// tests: datagrams are copied into the destination socket's queue (dropped
// when it is full, as a kernel would). A host can be blocked to simulate a
// firewall that drops all its UDP.
type MemNetwork struct {
	mu sync.Mutex
	// guarded by mu:
	conns    map[netip.AddrPort]*MemConn
	blocked  map[netip.Addr]bool
	nextPort uint16
}

// NewMemNetwork returns an empty network.
func NewMemNetwork() *MemNetwork {
	return &MemNetwork{conns: map[netip.AddrPort]*MemConn{}, blocked: map[netip.Addr]bool{}, nextPort: 40000}
}

// Host returns the Network of the host with address ip.
func (n *MemNetwork) Host(ip netip.Addr) *MemHost { return &MemHost{n: n, ip: ip} }

// SetBlocked drops (true) or delivers (false) all UDP to and from ip.
func (n *MemNetwork) SetBlocked(ip netip.Addr, blocked bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.blocked[ip] = blocked
}

func (n *MemNetwork) deliver(src, dst netip.AddrPort, b []byte) {
	n.mu.Lock()
	c := n.conns[dst]
	drop := n.blocked[src.Addr()] || n.blocked[dst.Addr()]
	n.mu.Unlock()
	if c == nil || drop {
		return
	}
	select {
	case c.in <- memPacket{src: src, b: append([]byte(nil), b...)}:
	default:
	}
}

// MemHost is one host of a MemNetwork: a Network with a single address.
type MemHost struct {
	n  *MemNetwork
	ip netip.Addr
}

// ListenUDP implements Network. A host only has its own address family.
func (h *MemHost) ListenUDP(network string, port uint16) (PacketConn, error) {
	if (network == "udp4") != h.ip.Is4() {
		return nil, fmt.Errorf("memnet: host %v has no %s", h.ip, network)
	}
	return h.Listen(port)
}

// Listen binds a socket on the host's address.
func (h *MemHost) Listen(port uint16) (*MemConn, error) {
	n := h.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == 0 {
		for n.conns[netip.AddrPortFrom(h.ip, n.nextPort)] != nil {
			n.nextPort++
		}
		port = n.nextPort
		n.nextPort++
	}
	ap := netip.AddrPortFrom(h.ip, port)
	if n.conns[ap] != nil {
		return nil, fmt.Errorf("memnet: %v: address in use", ap)
	}
	c := &MemConn{n: n, local: ap, in: make(chan memPacket, 1024), closed: make(chan struct{}), wake: make(chan struct{})}
	n.conns[ap] = c
	return c, nil
}

// LocalAddrs implements Network.
func (h *MemHost) LocalAddrs() ([]netip.Addr, error) { return []netip.Addr{h.ip}, nil }

type memPacket struct {
	src netip.AddrPort
	b   []byte
}

// MemConn is a MemNetwork socket. It implements PacketConn and
// net.PacketConn (so a relay's STUN server can serve on it).
type MemConn struct {
	n      *MemNetwork
	local  netip.AddrPort
	in     chan memPacket
	closed chan struct{}
	once   sync.Once

	mu sync.Mutex
	// guarded by mu:
	deadline time.Time
	wake     chan struct{} // closed and replaced when the deadline changes
}

var errMemClosed = net.ErrClosed

// LocalAddrPort implements PacketConn.
func (c *MemConn) LocalAddrPort() netip.AddrPort { return c.local }

// LocalAddr implements net.PacketConn.
func (c *MemConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.local) }

// Close implements PacketConn and net.PacketConn.
func (c *MemConn) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.n.mu.Lock()
		if c.n.conns[c.local] == c {
			delete(c.n.conns, c.local)
		}
		c.n.mu.Unlock()
	})
	return nil
}

// SetReadDeadline implements PacketConn and net.PacketConn.
func (c *MemConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	close(c.wake)
	c.wake = make(chan struct{})
	return nil
}

// SetDeadline implements net.PacketConn (writes never block).
func (c *MemConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetWriteDeadline implements net.PacketConn; writes never block.
func (c *MemConn) SetWriteDeadline(time.Time) error { return nil }

func (c *MemConn) read() (memPacket, error) {
	for {
		c.mu.Lock()
		dl, wake := c.deadline, c.wake
		c.mu.Unlock()
		var timeout <-chan time.Time
		var t *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return memPacket{}, os.ErrDeadlineExceeded
			}
			t = time.NewTimer(d)
			timeout = t.C
		}
		var (
			p   memPacket
			err error
			ok  bool
		)
		select {
		case p = <-c.in:
			ok = true
		case <-c.closed:
			err = errMemClosed
		case <-timeout:
			err = os.ErrDeadlineExceeded
		case <-wake:
		}
		if t != nil {
			t.Stop()
		}
		if ok || err != nil {
			return p, err
		}
	}
}

// ReadBatch implements PacketConn: it blocks for one datagram and then
// takes whatever else is queued, up to len(bufs).
func (c *MemConn) ReadBatch(bufs [][]byte, sizes []int, srcs []netip.AddrPort) (int, error) {
	p, err := c.read()
	if err != nil {
		return 0, err
	}
	sizes[0], srcs[0] = copy(bufs[0], p.b), p.src
	n := 1
	for n < len(bufs) {
		select {
		case p := <-c.in:
			sizes[n], srcs[n] = copy(bufs[n], p.b), p.src
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

// WriteBatch implements PacketConn.
func (c *MemConn) WriteBatch(bufs [][]byte, dst netip.AddrPort) error {
	select {
	case <-c.closed:
		return errMemClosed
	default:
	}
	for _, b := range bufs {
		c.n.deliver(c.local, dst, b)
	}
	return nil
}

// ReadFrom implements net.PacketConn.
func (c *MemConn) ReadFrom(b []byte) (int, net.Addr, error) {
	p, err := c.read()
	if err != nil {
		return 0, nil, err
	}
	return copy(b, p.b), net.UDPAddrFromAddrPort(p.src), nil
}

// WriteTo implements net.PacketConn.
func (c *MemConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("memnet: not a UDP address")
	}
	ap := ua.AddrPort()
	if err := c.WriteBatch([][]byte{b}, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())); err != nil {
		return 0, err
	}
	return len(b), nil
}
