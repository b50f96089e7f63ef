package netstack

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

const nicID = 1

// Options configures a Stack.
type Options struct {
	// Logger receives forwarding errors; nil discards them.
	Logger *slog.Logger
	// MTU is the tunnel MTU; default 1280.
	MTU int
	// ForwardInbound forwards inbound TCP connections to the node's own
	// tunnel addresses that no in-stack listener takes to the same port on
	// the host's loopback.
	ForwardInbound bool
	// DialLocal dials the host side of forwarded connections; nil uses
	// net.Dialer.
	DialLocal func(ctx context.Context, network, addr string) (net.Conn, error)
	// SplitGSO, when set, turns on TCP segmentation offload: the stack
	// hands Read TCP segments of up to 64 KB, which SplitGSO cuts into
	// MTU-sized packets. Its input is what a TUN with IFF_VNET_HDR reads:
	// a virtio_net_hdr, then the IP packet (wgengine passes its TUN
	// splitter).
	SplitGSO func(in []byte, bufs [][]byte, sizes []int, offset int) (int, error)
}

// TCP tuning, as tailscaled's netstack has it (wgengine/netstack): the
// buffer ranges favour throughput on high bandwidth-delay paths; RACK is
// off (gVisor's handles ACKs late and retransmits spuriously); reno, as
// gVisor's cubic has a congestion-window overflow.
const (
	tcpRXBufMax = 8 << 20
	tcpTXBufMax = 6 << 20
	tcpBufDef   = 1 << 20
)

// linkEP is a channel endpoint that keeps its dispatcher, for GRO.
type linkEP struct {
	*channel.Endpoint
	mu         sync.Mutex
	dispatcher stack.NetworkDispatcher // guarded by mu
}

func (e *linkEP) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	e.dispatcher = d
	e.mu.Unlock()
	e.Endpoint.Attach(d)
}

// GSOMaxSize lets the stack build TCP segments of up to 64 KB (the
// channel endpoint's default is 32 KB): half the trips through it.
func (*linkEP) GSOMaxSize() uint32 { return 1<<16 - 1 }

func (e *linkEP) getDispatcher() stack.NetworkDispatcher {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher
}

// Stack is a gVisor stack behind a tun.Device.
type Stack struct {
	opts   Options
	log    *slog.Logger
	ep     *linkEP
	s      *stack.Stack
	events chan tun.Event
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// guarded by mu:
	addrs []netip.Prefix

	// groMu guards gro: Write coalesces the TCP segments of one batch
	// into larger packets before the stack sees them (peers' receive
	// routines may call Write at the same time).
	groMu sync.Mutex
	gro   gro.GRO

	// Owned by Read (wireguard-go reads from one goroutine): a GSO
	// packet that did not fit in the last batch, and the virtio frame
	// SplitGSO is given.
	pending *stack.PacketBuffer
	frame   []byte
}

// New returns a stack with no addresses; set them with SetAddresses.
func New(opts Options) (*Stack, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MTU <= 0 {
		opts.MTU = 1280
	}
	st := &Stack{
		opts:   opts,
		log:    opts.Logger,
		ep:     &linkEP{Endpoint: channel.New(1024, uint32(opts.MTU), "")},
		events: make(chan tun.Event, 1),
		s: stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
			HandleLocal:        true,
		}),
	}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	sack := tcpip.TCPSACKEnabled(true)
	rack := tcpip.TCPRecovery(0)
	reno := tcpip.CongestionControlOption("reno")
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	rx := tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpBufDef, Max: tcpRXBufMax}
	tx := tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcpBufDef, Max: tcpTXBufMax}
	for _, opt := range []tcpip.SettableTransportProtocolOption{&sack, &rack, &reno, &moderate, &rx, &tx} {
		if err := st.s.SetTransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return nil, fmt.Errorf("netstack: TCP option %T: %v", opt, err)
		}
	}
	if opts.SplitGSO != nil {
		st.ep.SupportedGSOKind = stack.HostGSOSupported
	}
	// What arrives came through WireGuard, which authenticated it: the
	// stack skips checksum checks (the NIC sets RXChecksumValidated from
	// this capability), which GRO's merged packets, whose IPv4 header
	// checksum it does not redo, need.
	st.ep.LinkEPCapabilities |= stack.CapabilityRXChecksumOffload
	st.gro.Init(true)
	if err := st.s.CreateNIC(nicID, st.ep); err != nil {
		return nil, fmt.Errorf("netstack: create NIC: %v", err)
	}
	st.s.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})
	if opts.ForwardInbound {
		fwd := tcp.NewForwarder(st.s, 0, 1024, st.forwardTCP)
		st.s.SetTransportProtocolHandler(tcp.ProtocolNumber, fwd.HandlePacket)
	}
	st.events <- tun.EventUp
	return st, nil
}

// SetAddresses replaces the stack's tunnel addresses.
func (st *Stack) SetAddresses(prefixes []netip.Prefix) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	want := map[netip.Addr]bool{}
	for _, p := range prefixes {
		want[p.Addr()] = true
	}
	have := map[netip.Addr]bool{}
	for _, p := range st.addrs {
		have[p.Addr()] = true
		if !want[p.Addr()] {
			st.s.RemoveAddress(nicID, tcpip.AddrFromSlice(p.Addr().AsSlice()))
		}
	}
	var errs []error
	for _, p := range prefixes {
		if have[p.Addr()] {
			continue
		}
		proto := ipv4.ProtocolNumber
		if p.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddrFromSlice(p.Addr().AsSlice()).WithPrefix()}
		if err := st.s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			errs = append(errs, fmt.Errorf("netstack: add %v: %v", p, err))
		}
	}
	st.addrs = append(st.addrs[:0], prefixes...)
	return errors.Join(errs...)
}

// Addresses returns the current tunnel addresses.
func (st *Stack) Addresses() []netip.Prefix {
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]netip.Prefix(nil), st.addrs...)
}

func fullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(ap.Addr().Unmap().AsSlice()), Port: ap.Port()}, proto
}

// DialContext dials a tunnel address ("tcp"/"tcp4"/"tcp6" or "udp"...).
// addr must be a literal ip:port.
func (st *Stack) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("netstack: dial %s: %w", addr, err)
	}
	fa, proto := fullAddr(ap)
	switch network {
	case "tcp", "tcp4", "tcp6":
		return gonet.DialContextTCP(ctx, st.s, fa, proto)
	case "udp", "udp4", "udp6":
		return gonet.DialUDP(st.s, nil, &fa, proto)
	}
	return nil, fmt.Errorf("netstack: dial: unsupported network %q", network)
}

// ListenTCP listens on a tunnel address (an unspecified address listens on
// every address of its family).
func (st *Stack) ListenTCP(ap netip.AddrPort) (net.Listener, error) {
	fa, proto := fullAddr(ap)
	if ap.Addr().IsUnspecified() {
		fa.Addr = tcpip.Address{}
	}
	return gonet.ListenTCP(st.s, fa, proto)
}

// forwardTCP handles an inbound SYN that no in-stack listener took.
func (st *Stack) forwardTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst, _ := netip.AddrFromSlice(id.LocalAddress.AsSlice())
	if !st.isLocal(dst) {
		r.Complete(true)
		return
	}
	local := "127.0.0.1"
	if dst.Is6() {
		local = "::1"
	}
	target := net.JoinHostPort(local, strconv.Itoa(int(id.LocalPort)))
	dial := st.opts.DialLocal
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	hc, err := dial(st.ctx, "tcp", target)
	if err != nil {
		r.Complete(true) // RST: nothing listens there
		return
	}
	var wq waiterQueue
	ep, terr := r.CreateEndpoint(&wq.Queue)
	if terr != nil {
		r.Complete(true)
		hc.Close()
		return
	}
	r.Complete(false)
	tc := gonet.NewTCPConn(&wq.Queue, ep)
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		splice(st.ctx, tc, hc)
	}()
}

func (st *Stack) isLocal(ip netip.Addr) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, p := range st.addrs {
		if p.Addr() == ip {
			return true
		}
	}
	return false
}

// tun.Device

// File implements tun.Device.
func (st *Stack) File() *os.File { return nil }

// Name implements tun.Device.
func (st *Stack) Name() (string, error) { return "userspace-networking", nil }

// MTU implements tun.Device.
func (st *Stack) MTU() (int, error) { return st.opts.MTU, nil }

// Events implements tun.Device.
func (st *Stack) Events() <-chan tun.Event { return st.events }

// BatchSize implements tun.Device.
func (st *Stack) BatchSize() int { return 64 }

// Read implements tun.Device: packets the stack sends into the tunnel,
// TCP segments larger than the MTU cut by SplitGSO.
func (st *Stack) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	pkt := st.pending
	st.pending = nil
	if pkt == nil {
		if pkt = st.ep.ReadContext(st.ctx); pkt == nil {
			return 0, os.ErrClosed
		}
	}
	n := 0
	for {
		if pkt.GSOOptions.Type == stack.GSONone {
			sizes[n] = copyPacket(bufs[n][offset:], pkt)
			n++
		} else {
			segs := gsoSegments(pkt)
			if n > 0 && segs > len(bufs)-n {
				st.pending = pkt // next batch
				return n, nil
			}
			k, err := st.splitGSO(pkt, segs, bufs[n:], sizes[n:], offset)
			n += k
			if err != nil {
				// A segment the buffers cannot hold or a malformed
				// packet from the stack: drop it, keep what was cut.
				st.log.Debug("netstack: dropping GSO packet", "err", err)
			}
		}
		pkt.DecRef()
		if n == len(bufs) {
			return n, nil
		}
		if pkt = st.ep.Read(); pkt == nil {
			return n, nil
		}
	}
}

// gsoSegments is how many packets pkt's TCP payload makes.
func gsoSegments(pkt *stack.PacketBuffer) int {
	mss := int(pkt.GSOOptions.MSS)
	payload := pkt.Size() - int(pkt.GSOOptions.L3HdrLen) - len(pkt.TransportHeader().Slice())
	if mss <= 0 || payload <= 0 {
		return 1
	}
	return (payload + mss - 1) / mss
}

// virtio_net_hdr values splitGSO sets (linux/virtio_net.h).
const (
	vnetHdrLen     = 10
	vnetNeedsCsum  = 1
	vnetGSOTCPv4   = 1
	vnetGSOTCPv6   = 4
	tcpCsumOffset  = 16
	maxFrameLength = vnetHdrLen + 1<<16
)

// splitGSO frames pkt, which makes segs packets, as a TUN with
// IFF_VNET_HDR would and cuts it with SplitGSO.
func (st *Stack) splitGSO(pkt *stack.PacketBuffer, segs int, bufs [][]byte, sizes []int, offset int) (int, error) {
	g := pkt.GSOOptions
	size := pkt.Size()
	if size+vnetHdrLen > maxFrameLength {
		return 0, fmt.Errorf("GSO packet of %d bytes", size)
	}
	if cap(st.frame) < maxFrameLength {
		st.frame = make([]byte, maxFrameLength)
	}
	f := st.frame[:vnetHdrLen+size]
	clear(f[:vnetHdrLen])
	if g.NeedsCsum {
		f[0] = vnetNeedsCsum
	}
	switch {
	case segs <= 1:
		// gVisor marks every segment of a GSO connection, pure ACKs
		// too: one that needs no cutting only has its checksum completed.
	case g.Type == stack.GSOTCPv6:
		f[1] = vnetGSOTCPv6
	default:
		f[1] = vnetGSOTCPv4
	}
	hdrLen := int(g.L3HdrLen) + len(pkt.TransportHeader().Slice())
	binary.NativeEndian.PutUint16(f[2:], uint16(hdrLen))
	binary.NativeEndian.PutUint16(f[4:], g.MSS)
	binary.NativeEndian.PutUint16(f[6:], g.L3HdrLen)
	binary.NativeEndian.PutUint16(f[8:], tcpCsumOffset)
	copyPacket(f[vnetHdrLen:], pkt)
	return st.opts.SplitGSO(f, bufs, sizes, offset)
}

func copyPacket(dst []byte, pkt *stack.PacketBuffer) int {
	n := 0
	for _, s := range pkt.AsSlices() {
		n += copy(dst[n:], s)
	}
	return n
}

// Write implements tun.Device: packets from the tunnel into the stack.
// WireGuard authenticated them, so their checksums count as checked (as
// in-kernel WireGuard marks them); consecutive TCP segments of a flow are
// coalesced (GRO) before the stack processes them.
func (st *Stack) Write(bufs [][]byte, offset int) (int, error) {
	d := st.ep.getDispatcher()
	if d == nil {
		return 0, errors.New("netstack: write before the stack is attached")
	}
	st.groMu.Lock()
	defer st.groMu.Unlock()
	st.gro.Dispatcher = d
	for _, b := range bufs {
		p := b[offset:]
		if len(p) == 0 {
			continue
		}
		var proto tcpip.NetworkProtocolNumber
		switch p[0] >> 4 {
		case 4:
			proto = header.IPv4ProtocolNumber
		case 6:
			proto = header.IPv6ProtocolNumber
		default:
			continue
		}
		pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
		pkb.NetworkProtocolNumber = proto
		pkb.RXChecksumValidated = true
		st.gro.Enqueue(pkb)
		pkb.DecRef()
	}
	st.gro.Flush()
	return len(bufs), nil
}

// Close implements tun.Device: it stops the stack.
func (st *Stack) Close() error {
	select {
	case <-st.ctx.Done():
		return nil
	default:
	}
	st.cancel()
	st.s.Close()
	st.ep.Close()
	st.wg.Wait()
	close(st.events)
	return nil
}
