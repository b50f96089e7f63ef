package magicsock

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// PacketConn is one UDP socket as magicsock uses it. Implementations must
// allow one reader and concurrent writers.
type PacketConn interface {
	// ReadBatch reads at least one datagram into bufs, setting sizes and
	// sources, and returns how many were read.
	ReadBatch(bufs [][]byte, sizes []int, srcs []netip.AddrPort) (int, error)
	// WriteBatch sends every buffer in bufs to dst.
	WriteBatch(bufs [][]byte, dst netip.AddrPort) error
	// LocalAddrPort is the bound address.
	LocalAddrPort() netip.AddrPort
	// SetReadDeadline makes a blocked or later ReadBatch return a timeout
	// error at t (zero: no deadline).
	SetReadDeadline(t time.Time) error
	// Close closes the socket.
	Close() error
}

// Network opens UDP sockets and lists local addresses: the OS, or a
// MemNetwork host in tests.
type Network interface {
	// ListenUDP binds network ("udp4" or "udp6") on port (0: any).
	ListenUDP(network string, port uint16) (PacketConn, error)
	// LocalAddrs lists the host's unicast addresses, advertised as local
	// endpoints.
	LocalAddrs() ([]netip.Addr, error)
}

// OSNetwork is the host's real network.
type OSNetwork struct{}

// socketBufferSize is what tailscaled forces its UDP buffers to (§4.1).
const socketBufferSize = 7 << 20

// ListenUDP implements Network with batched I/O (recvmmsg/sendmmsg on Linux).
func (OSNetwork) ListenUDP(network string, port uint16) (PacketConn, error) {
	var laddr *net.UDPAddr
	switch network {
	case "udp4":
		laddr = &net.UDPAddr{IP: net.IPv4zero, Port: int(port)}
	case "udp6":
		laddr = &net.UDPAddr{IP: net.IPv6unspecified, Port: int(port)}
	default:
		return nil, fmt.Errorf("listen: unknown network %q", network)
	}
	uc, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	uc.SetReadBuffer(socketBufferSize) // best effort, as upstream
	uc.SetWriteBuffer(socketBufferSize)
	oc := &osConn{uc: uc, v6: network == "udp6", batch: runtime.GOOS == "linux"}
	oc.gso.Store(gsoAvailable)
	if oc.v6 {
		oc.p6 = ipv6.NewPacketConn(uc)
	} else {
		oc.p4 = ipv4.NewPacketConn(uc)
	}
	oc.local = uc.LocalAddr().(*net.UDPAddr).AddrPort()
	return oc, nil
}

// LocalAddrs returns the host's non-loopback unicast addresses.
func (OSNetwork) LocalAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range addrs {
		pn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(pn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		out = append(out, ip)
	}
	return out, nil
}

// osConn is a kernel UDP socket. Reads and writes use x/net's batch API,
// which maps to recvmmsg/sendmmsg on Linux.
type osConn struct {
	uc    *net.UDPConn
	p4    *ipv4.PacketConn
	p6    *ipv6.PacketConn
	v6    bool
	batch bool
	local netip.AddrPort
	gso   atomic.Bool // UDP_SEGMENT still worth trying

	// reader-owned (ipv6.Message is the same type):
	rmsgs    []ipv4.Message
	roob     []byte
	groTried bool // UDP_GRO was tried (once buffers big enough came by)
	gro      bool // UDP_GRO is on: reads may be coalesced
}

func (c *osConn) LocalAddrPort() netip.AddrPort     { return c.local }
func (c *osConn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }
func (c *osConn) Close() error                      { return c.uc.Close() }

func (c *osConn) ReadBatch(bufs [][]byte, sizes []int, srcs []netip.AddrPort) (int, error) {
	if !c.batch || len(bufs) == 1 {
		n, src, err := c.uc.ReadFromUDPAddrPort(bufs[0])
		if err != nil {
			return 0, err
		}
		sizes[0], srcs[0] = n, netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		return 1, nil
	}
	if len(c.rmsgs) < len(bufs) {
		c.rmsgs = make([]ipv4.Message, len(bufs))
		for i := range c.rmsgs {
			c.rmsgs[i].Buffers = make([][]byte, 1)
		}
	}
	if !c.groTried && groAvailable && len(bufs) > 1 && len(bufs[len(bufs)-1]) >= maxGROBytes {
		// Only with buffers that hold a whole coalesced read: the kernel
		// truncates anything longer.
		c.groTried = true
		c.gro = enableGRO(c.uc)
	}
	if c.gro {
		return c.readGRO(bufs, sizes, srcs)
	}
	msgs := c.rmsgs[:len(bufs)]
	for i := range msgs {
		msgs[i].Buffers[0] = bufs[i]
	}
	n, err := c.readMsgs(msgs)
	if err != nil {
		return 0, err
	}
	for i := range n {
		sizes[i] = msgs[i].N
		srcs[i] = msgSource(&msgs[i])
	}
	return n, nil
}

func (c *osConn) readMsgs(msgs []ipv4.Message) (int, error) {
	if c.v6 {
		return c.p6.ReadBatch(msgs, 0)
	}
	return c.p4.ReadBatch(msgs, 0)
}

func msgSource(m *ipv4.Message) netip.AddrPort {
	ua, ok := m.Addr.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// UDP GRO limits: a coalesced read is at most 64 datagrams (the kernel's
// UDP_GRO_CNT_MAX) of at most 64 KiB in all.
const (
	maxGROSegments = 64
	maxGROBytes    = 65535
)

// readGRO reads coalesced runs into the last buffers of bufs and cuts them
// back into datagrams at the front (as wireguard-go's StdNetBind does): a
// handful of reads of up to 64 datagrams each instead of one per datagram.
// The copy moves each datagram once; the kernel no longer segments.
func (c *osConn) readGRO(bufs [][]byte, sizes []int, srcs []netip.AddrPort) (int, error) {
	k := max(1, len(bufs)/maxGROSegments)
	readAt := len(bufs) - k
	space := groControlSpace()
	if len(c.roob) < k*space {
		c.roob = make([]byte, k*space)
	}
	msgs := c.rmsgs[:k]
	for i := range msgs {
		msgs[i].Buffers[0] = bufs[readAt+i]
		msgs[i].OOB = c.roob[i*space : (i+1)*space]
	}
	n, err := c.readMsgs(msgs)
	if err != nil {
		return 0, err
	}
	out := 0
	for i := range n {
		m := &msgs[i]
		src := msgSource(m)
		data := bufs[readAt+i][:m.N]
		seg := groSize(m.OOB[:m.NN])
		if seg <= 0 || seg >= len(data) {
			seg = max(len(data), 1)
		}
		for start := 0; start < len(data); start += seg {
			if out > readAt+i {
				break // more datagrams than buffers in front: drop the rest
			}
			end := min(start+seg, len(data))
			sizes[out] = copy(bufs[out], data[start:end])
			srcs[out] = src
			out++
		}
		if len(data) == 0 && out <= readAt+i {
			sizes[out], srcs[out] = 0, src // an empty datagram stays one
			out++
		}
	}
	return out, nil
}

func (c *osConn) WriteBatch(bufs [][]byte, dst netip.AddrPort) error {
	if c.v6 && dst.Addr().Is4() {
		dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
	}
	if !c.batch || len(bufs) == 1 {
		var errs []error
		for _, b := range bufs {
			if _, err := c.uc.WriteToUDPAddrPort(b, dst); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	ua := net.UDPAddrFromAddrPort(dst)
	if c.gso.Load() {
		err := c.sendMsgs(coalesce(bufs, ua))
		if err == nil || !gsoRefused(err) {
			return err
		}
		c.gso.Store(false) // and resend without: WireGuard drops duplicates
	}
	msgs := make([]ipv4.Message, len(bufs))
	for i, b := range bufs {
		msgs[i] = ipv4.Message{Buffers: [][]byte{b}, Addr: ua}
	}
	return c.sendMsgs(msgs)
}

// UDP GSO limits: the kernel's UDP_MAX_SEGMENTS on older kernels, and the
// largest UDP payload of one IPv4 datagram.
const (
	maxGSOSegments = 64
	maxGSOBytes    = 65507
)

// coalesce turns bufs into sendmmsg messages, each a run of equal-size
// packets (the last may be shorter) sent with one UDP_SEGMENT control
// message: the kernel cuts it back into the same datagrams, for one trip
// through the UDP stack instead of one per packet. The packets are passed
// as an iovec, not copied.
func coalesce(bufs [][]byte, ua *net.UDPAddr) []ipv4.Message {
	var msgs []ipv4.Message
	for i := 0; i < len(bufs); {
		seg := len(bufs[i])
		total, j := seg, i+1
		for j < len(bufs) && j-i < maxGSOSegments && len(bufs[j]) <= seg && total+len(bufs[j]) <= maxGSOBytes {
			total += len(bufs[j])
			j++
			if len(bufs[j-1]) < seg {
				break // a shorter packet must be the run's last
			}
		}
		m := ipv4.Message{Buffers: bufs[i:j:j], Addr: ua}
		if j-i > 1 {
			m.OOB = gsoControl(seg)
		}
		msgs = append(msgs, m)
		i = j
	}
	return msgs
}

// sendMsgs sends msgs with sendmmsg until all are gone.
func (c *osConn) sendMsgs(msgs []ipv4.Message) error {
	for len(msgs) > 0 {
		var n int
		var err error
		if c.v6 {
			n, err = c.p6.WriteBatch(msgs, 0)
		} else {
			n, err = c.p4.WriteBatch(msgs, 0)
		}
		if err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}
