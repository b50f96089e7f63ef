package wgengine

import (
	"encoding/binary"
)

// TCP receive coalescing for a TUN with IFF_VNET_HDR: consecutive segments
// of one flow in a batch leave as one super-segment that the kernel takes
// as if a NIC had done GRO, so the host's TCP stack sees a few large
// packets instead of one per 1280-byte tunnel packet.
//
// wireguard-go's own TUN Write does the same but first verifies the TCP
// checksum of every segment. Decrypted packets passed the Poly1305 check,
// so, like in-kernel WireGuard (drivers/net/wireguard/receive.c marks them
// CHECKSUM_UNNECESSARY), weft does not verify them again: every TCP
// segment is written with VIRTIO_NET_HDR_F_NEEDS_CSUM (CHECKSUM_PARTIAL),
// which local delivery accepts as checked and forwarding completes.

// virtio_net_hdr as the TUN driver reads it (host byte order).
const (
	vnetHdrLen      = 10
	vnetNeedsCsum   = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSONone     = 0
	vnetGSOTCPv4    = 1
	vnetGSOTCPv6    = 4
	tcpCsumOffset   = 16
	tcpFlagFIN      = 0x01
	tcpFlagPSH      = 0x08
	tcpFlagACK      = 0x10
	maxGROFlows     = 16    // flows tracked per batch; more just do not merge
	maxSuperSegment = 65535 // IPv4 total length; also bounds the IPv6 payload
)

// groFlow names a TCP flow: addresses and ports as on the wire.
type groFlow struct {
	addrs [32]byte
	ports [4]byte
	v6    bool
}

// groRun is one packet to write: a segment and the segments merged after
// it, which stay in their own buffers (writev gathers them).
type groRun struct {
	idx     int // bufs index of the first segment, whose headers are kept
	last    int // bufs index of the last merged segment
	length  int // IP packet length with every merged payload
	iphLen  int
	tcphLen int
	gsoSize int    // payload size of the first segment
	nextSeq uint32 // sequence number a following segment must have
	merged  int
	tcp     bool // a TCP segment to write with NEEDS_CSUM
	closed  bool // PSH seen or a short segment appended: nothing may follow
	v6      bool
}

// tcpGRO is the reusable state of one coalescing pass.
type tcpGRO struct {
	runs  []groRun
	open  []int // index in runs of each flow's open run, parallel to flows
	flows []groFlow
	next  []int // bufs index of the segment merged after each one, or -1
}

// groSegment is what coalescing needs from one packet.
type groSegment struct {
	iphLen, tcphLen, payload int
	seq                      uint32
	flags                    byte
	flow                     groFlow
	v6                       bool
}

// parseGROSegment parses pkt as a TCP segment; ok is false for anything
// else (including IPv4 options, fragments and IPv6 extension headers,
// which are written unchanged).
func parseGROSegment(pkt []byte) (s groSegment, ok bool) {
	if len(pkt) < 20 {
		return s, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if pkt[0]&0x0f != 5 || pkt[9] != 6 || int(binary.BigEndian.Uint16(pkt[2:])) != len(pkt) {
			return s, false
		}
		if binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 { // MF or a fragment offset
			return s, false
		}
		s.iphLen = 20
		copy(s.flow.addrs[:], pkt[12:20])
	case 6:
		if len(pkt) < 40 || pkt[6] != 6 || int(binary.BigEndian.Uint16(pkt[4:]))+40 != len(pkt) {
			return s, false
		}
		s.iphLen, s.v6 = 40, true
		copy(s.flow.addrs[:], pkt[8:40])
	default:
		return s, false
	}
	if len(pkt) < s.iphLen+20 {
		return s, false
	}
	tcp := pkt[s.iphLen:]
	s.tcphLen = int(tcp[12]>>4) * 4
	if s.tcphLen < 20 || len(tcp) < s.tcphLen {
		return s, false
	}
	s.payload = len(tcp) - s.tcphLen
	s.seq = binary.BigEndian.Uint32(tcp[4:])
	s.flags = tcp[13]
	s.flow.v6 = s.v6
	copy(s.flow.ports[:], tcp[:4])
	return s, true
}

// mergeable reports whether s may follow run r (the kernel's GRO rules,
// tools/testing/selftests/net/gro.c): only ACK or ACK+PSH, the next
// sequence number, equal IP fields other than length/ID/checksum, equal
// acknowledgement number and options, and no larger than the first
// segment.
func mergeable(head, pkt []byte, r *groRun, s *groSegment) bool {
	if r.closed || s.flags&^tcpFlagPSH != tcpFlagACK || s.payload == 0 || s.payload > r.gsoSize ||
		s.seq != r.nextSeq || s.tcphLen != r.tcphLen || r.length+s.payload > maxSuperSegment {
		return false
	}
	if s.v6 {
		// version, traffic class, flow label; hop limit
		if [4]byte(head[:4]) != [4]byte(pkt[:4]) || head[7] != pkt[7] {
			return false
		}
	} else if head[1] != pkt[1] || head[6]>>5 != pkt[6]>>5 || head[8] != pkt[8] { // TOS, DF, TTL
		return false
	}
	ht, pt := head[r.iphLen:], pkt[s.iphLen:]
	if [4]byte(ht[8:12]) != [4]byte(pt[8:12]) { // ack number
		return false
	}
	return string(ht[20:r.tcphLen]) == string(pt[20:s.tcphLen])
}

// coalesce merges bufs (packets at offset, with vnetHdrLen bytes of
// headroom before them) and fills in the virtio header and headers of each
// run's first packet. It returns the runs to write, in order; iovecs says
// what to write for each. Nothing is copied: merging only links segments.
func (g *tcpGRO) coalesce(bufs [][]byte, offset int) []groRun {
	g.runs, g.open, g.flows = g.runs[:0], g.open[:0], g.flows[:0]
	if cap(g.next) < len(bufs) {
		g.next = make([]int, len(bufs))
	}
	g.next = g.next[:len(bufs)]
	for i, b := range bufs {
		g.next[i] = -1
		pkt := b[offset:]
		s, ok := parseGROSegment(pkt)
		if !ok {
			g.runs = append(g.runs, groRun{idx: i})
			continue
		}
		f := -1
		for j := range g.flows {
			if g.flows[j] == s.flow {
				f = j
				break
			}
		}
		if f >= 0 {
			r := &g.runs[g.open[f]]
			head := bufs[r.idx][offset:]
			if mergeable(head, pkt, r, &s) {
				g.next[r.last] = i
				r.last = i
				r.length += s.payload
				r.merged++
				r.nextSeq += uint32(s.payload)
				if s.flags&tcpFlagPSH != 0 {
					head[r.iphLen+13] |= tcpFlagPSH
					r.closed = true
				}
				if s.payload < r.gsoSize {
					r.closed = true
				}
				continue
			}
		}
		g.runs = append(g.runs, groRun{
			idx: i, last: i, length: len(pkt), iphLen: s.iphLen, tcphLen: s.tcphLen, gsoSize: s.payload,
			nextSeq: s.seq + uint32(s.payload), tcp: true, v6: s.v6,
			// Only plain data segments start a run; anything else (SYN,
			// FIN, RST, URG, ECN flags, pure ACKs) also ends the flow's
			// open run so that nothing later is merged ahead of it.
			closed: s.flags&^tcpFlagPSH != tcpFlagACK || s.payload == 0 || s.flags&tcpFlagPSH != 0,
		})
		switch {
		case f >= 0:
			g.open[f] = len(g.runs) - 1
		case len(g.flows) < maxGROFlows:
			g.flows = append(g.flows, s.flow)
			g.open = append(g.open, len(g.runs)-1)
		}
	}
	for i := range g.runs {
		finishRun(bufs[g.runs[i].idx], offset, &g.runs[i])
	}
	return g.runs
}

// iovecs appends to dst what to write for r: the virtio header and first
// packet, then the payload of each merged segment.
func (g *tcpGRO) iovecs(dst, bufs [][]byte, offset int, r *groRun) [][]byte {
	dst = append(dst, bufs[r.idx][offset-vnetHdrLen:])
	for i := g.next[r.idx]; i >= 0; i = g.next[i] {
		dst = append(dst, bufs[i][offset+r.iphLen+r.tcphLen:])
	}
	return dst
}

// finishRun writes the virtio header of r's packet and, for merged runs,
// its new lengths and IPv4 header checksum. TCP segments carry the
// pseudo-header sum in their checksum field, as CHECKSUM_PARTIAL needs.
func finishRun(b []byte, offset int, r *groRun) {
	hdr := b[offset-vnetHdrLen : offset]
	clear(hdr)
	if !r.tcp {
		return
	}
	pkt := b[offset:]
	l4len := r.length - r.iphLen
	var addrs []byte
	if r.v6 {
		binary.BigEndian.PutUint16(pkt[4:], uint16(l4len))
		addrs = pkt[8:40]
	} else {
		binary.BigEndian.PutUint16(pkt[2:], uint16(r.length))
		if r.merged > 0 {
			pkt[10], pkt[11] = 0, 0
			binary.BigEndian.PutUint16(pkt[10:], ^csumFinish(csumBytes(pkt[:20], 0)))
		}
		addrs = pkt[12:20]
	}
	// Pseudo-header: addresses, protocol and TCP length (checksum helpers
	// in tunsplit.go).
	sum := csumFold(csumBytes(addrs, 0)) + csumNative16(6) + csumNative16(uint16(l4len))
	binary.BigEndian.PutUint16(pkt[r.iphLen+tcpCsumOffset:], csumFinish(sum))
	hdr[0] = vnetNeedsCsum
	hdr[1] = vnetGSONone
	if r.merged > 0 {
		hdr[1] = vnetGSOTCPv4
		if r.v6 {
			hdr[1] = vnetGSOTCPv6
		}
		binary.NativeEndian.PutUint16(hdr[2:], uint16(r.iphLen+r.tcphLen)) // hdr_len
		binary.NativeEndian.PutUint16(hdr[4:], uint16(r.gsoSize))          // gso_size
	}
	binary.NativeEndian.PutUint16(hdr[6:], uint16(r.iphLen)) // csum_start
	binary.NativeEndian.PutUint16(hdr[8:], tcpCsumOffset)    // csum_offset
}
