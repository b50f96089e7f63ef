package netstack

import (
	"context"
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
}

// Stack is a gVisor stack behind a tun.Device.
type Stack struct {
	opts   Options
	log    *slog.Logger
	ep     *channel.Endpoint
	s      *stack.Stack
	events chan tun.Event
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu sync.Mutex
	// guarded by mu:
	addrs []netip.Prefix
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
		ep:     channel.New(1024, uint32(opts.MTU), ""),
		events: make(chan tun.Event, 1),
		s: stack.New(stack.Options{
			NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
			TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
			HandleLocal:        true,
		}),
	}
	st.ctx, st.cancel = context.WithCancel(context.Background())
	sack := tcpip.TCPSACKEnabled(true)
	st.s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
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

// Read implements tun.Device: packets the stack sends into the tunnel.
func (st *Stack) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	pkt := st.ep.ReadContext(st.ctx)
	if pkt == nil {
		return 0, os.ErrClosed
	}
	n := 0
	for {
		sizes[n] = copyPacket(bufs[n][offset:], pkt)
		pkt.DecRef()
		n++
		if n == len(bufs) {
			return n, nil
		}
		if pkt = st.ep.Read(); pkt == nil {
			return n, nil
		}
	}
}

func copyPacket(dst []byte, pkt *stack.PacketBuffer) int {
	n := 0
	for _, s := range pkt.AsSlices() {
		n += copy(dst[n:], s)
	}
	return n
}

// Write implements tun.Device: packets from the tunnel into the stack.
func (st *Stack) Write(bufs [][]byte, offset int) (int, error) {
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
		st.ep.InjectInbound(proto, pkb)
		pkb.DecRef()
	}
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
