package magicsock

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// rebindConn is the PacketConn the rest of magicsock holds: a stable face
// over a socket that `weft debug rebind` (and, later, link changes) can
// replace, as upstream's RebindingUDPConn. A reader whose socket is closed
// under it by a rebind waits for the new one and carries on, so
// wireguard-go's receive functions never see the swap.
type rebindConn struct {
	net     Network
	network string // "udp4" or "udp6"

	cur      atomic.Pointer[socketGen]
	deadline atomic.Int64 // UnixNano of the last SetReadDeadline; 0: none
	closed   atomic.Bool

	mu sync.Mutex // serializes rebind and Close
}

// socketGen is one socket of a rebindConn; retiring is set just before a
// rebind closes it and replaced is closed once its successor is current.
type socketGen struct {
	pc       PacketConn // nil after a rebind that could not bind at all
	retiring atomic.Bool
	replaced chan struct{}
}

var errNoSocket = errors.New("magicsock: no UDP socket (rebind failed to bind one)")

func newRebindConn(n Network, network string, pc PacketConn) *rebindConn {
	r := &rebindConn{net: n, network: network}
	r.cur.Store(&socketGen{pc: pc, replaced: make(chan struct{})})
	return r
}

// ReadBatch implements PacketConn.
func (r *rebindConn) ReadBatch(bufs [][]byte, sizes []int, srcs []netip.AddrPort) (int, error) {
	for {
		g := r.cur.Load()
		if g.pc == nil {
			return 0, errNoSocket
		}
		n, err := g.pc.ReadBatch(bufs, sizes, srcs)
		if err == nil || r.closed.Load() || !g.retiring.Load() {
			return n, err
		}
		<-g.replaced
	}
}

// WriteBatch implements PacketConn. A write that races a rebind may fail;
// the packet is lost as on any network change.
func (r *rebindConn) WriteBatch(bufs [][]byte, dst netip.AddrPort) error {
	g := r.cur.Load()
	if g.pc == nil {
		return errNoSocket
	}
	return g.pc.WriteBatch(bufs, dst)
}

// LocalAddrPort implements PacketConn.
func (r *rebindConn) LocalAddrPort() netip.AddrPort {
	if g := r.cur.Load(); g.pc != nil {
		return g.pc.LocalAddrPort()
	}
	return netip.AddrPort{}
}

// SetReadDeadline implements PacketConn; the deadline carries over to the
// socket a rebind opens.
func (r *rebindConn) SetReadDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	r.deadline.Store(ns)
	if g := r.cur.Load(); g.pc != nil {
		return g.pc.SetReadDeadline(t)
	}
	return nil
}

// Close implements PacketConn.
func (r *rebindConn) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Swap(true) {
		return nil
	}
	if g := r.cur.Load(); g.pc != nil {
		return g.pc.Close()
	}
	return nil
}

// rebind closes the socket and binds a new one on the same port (upstream
// tries the same port first too, so peers' knowledge of our endpoint stays
// right); if that port is taken meanwhile, any port. It returns the new
// local address.
func (r *rebindConn) rebind() (netip.AddrPort, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return netip.AddrPort{}, net.ErrClosed
	}
	old := r.cur.Load()
	var port uint16
	if old.pc != nil {
		port = old.pc.LocalAddrPort().Port()
		old.retiring.Store(true)
		old.pc.Close()
	}
	pc, err := r.net.ListenUDP(r.network, port)
	if err != nil && port != 0 {
		pc, err = r.net.ListenUDP(r.network, 0)
	}
	next := &socketGen{replaced: make(chan struct{})}
	if err == nil {
		next.pc = pc
		if ns := r.deadline.Load(); ns != 0 {
			pc.SetReadDeadline(time.Unix(0, ns))
		}
	}
	r.cur.Store(next)
	close(old.replaced)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("magicsock: rebind %s (port %d): %w", r.network, port, err)
	}
	return pc.LocalAddrPort(), nil
}
