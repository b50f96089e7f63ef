package wgengine

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/tsmp"
)

// filter wraps the tun.Device and drops inbound packets (tunnel → host)
// that the network map's packet filter does not allow. It is stateful the
// way tailscaled's is: TCP segments without SYN are never a new flow and
// pass, ICMP replies pass, and UDP replies pass when the host sent to that
// peer address and port first.
//
// It is also where the engine talks in the tunnel itself: packets it
// injects come out of Read ahead of the host's, and inbound TSMP, and the
// replies to its own ICMP pings, go to the pinger instead of the host.
type filter struct {
	tun.Device
	rules atomic.Pointer[filterState]
	inj   *injector
	// pings handles inbound TSMP and echo replies; nil drops all TSMP. It
	// is set before the device starts and never changes.
	pings *pinger

	mu sync.Mutex
	// guarded by mu:
	udpFlows map[flowKey]time.Time
}

type filterState struct {
	local []netip.Prefix
	rules []rule
}

// flowKey is a UDP flow from the host's point of view.
type flowKey struct {
	local, remote netip.AddrPort
}

const (
	maxUDPFlows = 8192
	udpFlowTTL  = 2 * time.Minute
)

func newFilter(inner tun.Device) *filter {
	f := &filter{Device: inner, inj: newInjector(inner), udpFlows: map[flowKey]time.Time{}}
	f.rules.Store(&filterState{}) // nil PacketFilter: block new inbound flows
	return f
}

func (f *filter) set(local []netip.Prefix, rules []rule) {
	f.rules.Store(&filterState{local: local, rules: rules})
}

// inject queues pkt to go out through WireGuard as if the host had sent
// it; it takes ownership of pkt.
func (f *filter) inject(pkt []byte) error { return f.inj.inject(pkt) }

// Close implements tun.Device.
func (f *filter) Close() error {
	f.inj.close()
	return f.Device.Close()
}

// Read returns injected packets, or the host's with their outbound UDP
// flows recorded and any TSMP dropped: TSMP only ever comes from the
// engine (tstun drops it from the host too).
func (f *filter) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, injected, err := f.inj.read(bufs, sizes, offset)
	if injected {
		return n, err
	}
	var now time.Time
	var last flowKey
	for i := range n {
		b := bufs[i][offset : offset+sizes[i]]
		if proto := ipProto(b); proto != ctrl.ProtoUDP {
			// The common case (TCP) costs two byte loads and two compares.
			if proto == tsmp.Proto {
				sizes[i] = 0 // wireguard-go skips empty packets
			}
			continue
		}
		p, ok := parsePacket(b)
		if !ok || (!now.IsZero() && last == flowKey{p.src, p.dst}) {
			continue
		}
		last = flowKey{p.src, p.dst}
		if now.IsZero() {
			now = time.Now()
			f.mu.Lock()
		}
		if len(f.udpFlows) >= maxUDPFlows {
			for k, t := range f.udpFlows {
				if now.Sub(t) > udpFlowTTL || len(f.udpFlows) >= maxUDPFlows {
					delete(f.udpFlows, k)
				}
			}
		}
		f.udpFlows[flowKey{p.src, p.dst}] = now
	}
	if !now.IsZero() {
		f.mu.Unlock()
	}
	return n, err
}

// Write drops disallowed inbound packets, and hands the engine's own
// (TSMP, replies to its pings) to the pinger, before the host sees them.
func (f *filter) Write(bufs [][]byte, offset int) (int, error) {
	st := f.rules.Load()
	kept := bufs[:0:0]
	drop := false
	for i, b := range bufs {
		if f.admit(st, b[offset:]) {
			if drop {
				kept = append(kept, b)
			}
			continue
		}
		if !drop {
			drop = true
			kept = append(make([][]byte, 0, len(bufs)), bufs[:i]...)
		}
	}
	if !drop {
		return f.Device.Write(bufs, offset)
	}
	if len(kept) == 0 {
		return len(bufs), nil
	}
	if _, err := f.Device.Write(kept, offset); err != nil {
		return 0, err
	}
	return len(bufs), nil
}

// ipProto is the IP protocol of an unfragmented-looking packet, or -1.
func ipProto(b []byte) int {
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		return int(b[9])
	case len(b) >= 40 && b[0]>>4 == 6:
		return int(b[6])
	}
	return -1
}

// establishedTCP reports whether pkt is a TCP segment of an existing
// connection (no SYN, or SYN+ACK), read straight from the headers: the
// bulk of tunnel traffic, allowed without building a packet.
func establishedTCP(b []byte) bool {
	var l4 []byte
	switch {
	case len(b) >= 20 && b[0]>>4 == 4 && b[9] == ctrl.ProtoTCP:
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return false
		}
		l4 = b[ihl:]
	case len(b) >= 40 && b[0]>>4 == 6 && b[6] == ctrl.ProtoTCP:
		l4 = b[40:]
	}
	if len(l4) < 14 {
		return false
	}
	return l4[13]&0x02 == 0 || l4[13]&0x10 != 0
}

// admit reports whether an inbound packet goes on to the host: TSMP never
// does (the pinger answers or consumes it), nor does the echo reply to one
// of the engine's own pings; the rest is up to allow. Established TCP is
// tested first so that bulk traffic pays for nothing else.
func (f *filter) admit(st *filterState, pkt []byte) bool {
	if establishedTCP(pkt) {
		return true
	}
	switch ipProto(pkt) {
	case tsmp.Proto:
		if f.pings != nil {
			f.pings.inboundTSMP(pkt)
		}
		return false
	case ctrl.ProtoICMP, ctrl.ProtoICMPv6:
		if f.pings != nil && f.pings.echoOutstanding() && f.pings.inboundEcho(pkt) {
			return false
		}
	}
	return f.allow(st, pkt)
}

func (f *filter) allow(st *filterState, pkt []byte) bool {
	if establishedTCP(pkt) {
		return true
	}
	p, ok := parsePacket(pkt)
	if !ok {
		return false
	}
	switch p.proto {
	case ctrl.ProtoTCP:
		if !p.syn || p.ack {
			return true // not a new connection
		}
	case ctrl.ProtoICMP, ctrl.ProtoICMPv6:
		if !p.echoRequest {
			return true // replies and errors
		}
	case ctrl.ProtoUDP:
		f.mu.Lock()
		t, ok := f.udpFlows[flowKey{p.dst, p.src}]
		f.mu.Unlock()
		if ok && time.Since(t) < udpFlowTTL {
			return true
		}
	}
	for i := range st.rules {
		if st.rules[i].match(&p, st.local) {
			return true
		}
	}
	return false
}

// packet is what the filter needs from an IP header.
type packet struct {
	proto       int
	src, dst    netip.AddrPort
	syn, ack    bool
	echoRequest bool
	fragment    bool
}

func parsePacket(b []byte) (packet, bool) {
	var p packet
	if len(b) < 1 {
		return p, false
	}
	var l4 []byte
	var src, dst netip.Addr
	switch b[0] >> 4 {
	case 4:
		if len(b) < 20 {
			return p, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return p, false
		}
		p.proto = int(b[9])
		src, dst = netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
		if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			p.fragment = true
		}
		l4 = b[ihl:]
	case 6:
		if len(b) < 40 {
			return p, false
		}
		p.proto = int(b[6])
		src, dst = netip.AddrFrom16([16]byte(b[8:24])), netip.AddrFrom16([16]byte(b[24:40]))
		l4 = b[40:]
	default:
		return p, false
	}
	var sport, dport uint16
	switch p.proto {
	case ctrl.ProtoTCP:
		if len(l4) >= 14 {
			sport, dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
			p.syn, p.ack = l4[13]&0x02 != 0, l4[13]&0x10 != 0
		}
	case ctrl.ProtoUDP:
		if len(l4) >= 4 {
			sport, dport = binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:])
		}
	case ctrl.ProtoICMP:
		p.echoRequest = len(l4) > 0 && l4[0] == 8
	case ctrl.ProtoICMPv6:
		p.echoRequest = len(l4) > 0 && l4[0] == 128
	}
	p.src, p.dst = netip.AddrPortFrom(src, sport), netip.AddrPortFrom(dst, dport)
	return p, true
}

// rule is a compiled ctrl.FilterRule.
type rule struct {
	srcs   []ipRange
	dsts   []dstRange
	protos []int
}

type ipRange struct{ from, to netip.Addr } // inclusive; zero from = any

type dstRange struct {
	ip          ipRange
	anyLocal    bool
	first, last uint16
}

func (r ipRange) contains(ip netip.Addr) bool {
	if !r.from.IsValid() {
		return true
	}
	return r.from.BitLen() == ip.BitLen() && r.from.Compare(ip) <= 0 && ip.Compare(r.to) <= 0
}

func parseIPRange(s string) (ipRange, bool) {
	if s == "*" {
		return ipRange{}, true
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		from, err1 := netip.ParseAddr(a)
		to, err2 := netip.ParseAddr(b)
		return ipRange{from, to}, err1 == nil && err2 == nil
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		p = p.Masked()
		return ipRange{p.Addr(), lastAddr(p)}, true
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ipRange{ip, ip}, true
	}
	return ipRange{}, false
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// compileFilter turns the netmap's rules into matchers. Unparseable
// entries (including "cap:" sources) match nothing. ShieldsUp or a nil
// filter allows no new inbound flows.
func compileFilter(rules []ctrl.FilterRule, local []netip.Prefix, shieldsUp bool) []rule {
	if shieldsUp {
		return nil
	}
	var out []rule
	for _, fr := range rules {
		var r rule
		for _, s := range fr.SrcIPs {
			if ir, ok := parseIPRange(s); ok {
				r.srcs = append(r.srcs, ir)
			}
		}
		for _, d := range fr.DstPorts {
			dr := dstRange{first: d.Ports.First, last: d.Ports.Last}
			if d.IP == "*" {
				dr.anyLocal = true
			} else if ir, ok := parseIPRange(d.IP); ok {
				dr.ip = ir
			} else {
				continue
			}
			r.dsts = append(r.dsts, dr)
		}
		r.protos = fr.IPProto
		if len(r.protos) == 0 {
			r.protos = []int{ctrl.ProtoTCP, ctrl.ProtoUDP, ctrl.ProtoICMP, ctrl.ProtoICMPv6}
		}
		if len(r.srcs) > 0 && len(r.dsts) > 0 {
			out = append(out, r)
		}
	}
	return out
}

func (r *rule) match(p *packet, local []netip.Prefix) bool {
	protoOK := false
	for _, pr := range r.protos {
		if pr == p.proto {
			protoOK = true
			break
		}
	}
	if !protoOK {
		return false
	}
	srcOK := false
	for _, s := range r.srcs {
		if s.contains(p.src.Addr()) {
			srcOK = true
			break
		}
	}
	if !srcOK {
		return false
	}
	ports := p.proto == ctrl.ProtoTCP || p.proto == ctrl.ProtoUDP
	for _, d := range r.dsts {
		if ports && !p.fragment && (p.dst.Port() < d.first || p.dst.Port() > d.last) {
			continue
		}
		if d.anyLocal {
			for _, l := range local {
				if l.Addr() == p.dst.Addr() {
					return true
				}
			}
			continue
		}
		if d.ip.contains(p.dst.Addr()) {
			return true
		}
	}
	return false
}
