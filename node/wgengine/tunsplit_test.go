package wgengine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/tun"
)

const splitTestOffset = 16 // wireguard-go's MessageTransportOffsetContent

// gsoCase describes a virtio read to generate: a GSO packet, or with
// gsoType vnetGSONone a single packet whose checksum may be partial.
type gsoCase struct {
	v6, udp   bool
	gsoType   uint8 // vnetGSONone for a single packet
	ipOpts    int   // bytes of IPv4 options (multiple of 4)
	v6Ext     bool  // an 8-byte IPv6 destination options header
	tcpOpts   int   // bytes of TCP options (multiple of 4)
	gsoSize   int
	payload   int
	flags     byte // TCP flags
	needsCsum bool // gsoNone only
}

func (c gsoCase) String() string {
	return fmt.Sprintf("v6=%v udp=%v gso=%d ipopts=%d ext=%v tcpopts=%d size=%d payload=%d flags=%#x csum=%v",
		c.v6, c.udp, c.gsoType, c.ipOpts, c.v6Ext, c.tcpOpts, c.gsoSize, c.payload, c.flags, c.needsCsum)
}

// build returns the virtio header and packet the TUN would hand over;
// fields that splitting must overwrite hold random values.
func (c gsoCase) build(rng *rand.Rand) []byte {
	iphLen, l4Len := 20+c.ipOpts, 8
	if c.v6 {
		iphLen = 40
		if c.v6Ext {
			iphLen += 8
		}
	}
	proto := byte(17)
	if !c.udp {
		proto, l4Len = 6, 20+c.tcpOpts
	}
	n := iphLen + l4Len + c.payload
	b := make([]byte, vnetHdrLen+n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	h, pkt := b[:vnetHdrLen], b[vnetHdrLen:]
	h[0], h[1] = 0, c.gsoType
	if c.gsoType != vnetGSONone || c.needsCsum {
		h[0] = vnetNeedsCsum
	}
	binary.NativeEndian.PutUint16(h[2:], uint16(iphLen+l4Len+rng.IntN(2)*c.gsoSize)) // hdr_len: not trusted
	binary.NativeEndian.PutUint16(h[4:], uint16(c.gsoSize))
	binary.NativeEndian.PutUint16(h[6:], uint16(iphLen))
	if c.udp {
		binary.NativeEndian.PutUint16(h[8:], udpCsumOffset)
	} else {
		binary.NativeEndian.PutUint16(h[8:], tcpCsumOffset)
	}
	if c.v6 {
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(n-40))
		pkt[6] = proto
		if c.v6Ext {
			pkt[6] = 60
			pkt[40], pkt[41] = proto, 0
			copy(pkt[42:48], []byte{1, 4, 0, 0, 0, 0}) // PadN
		}
	} else {
		pkt[0] = 0x40 | byte(iphLen/4)
		binary.BigEndian.PutUint16(pkt[2:], uint16(n))
		pkt[6], pkt[7] = 0x40, 0 // DF
		pkt[9] = proto
	}
	l4 := pkt[iphLen:]
	at := tcpCsumOffset
	if c.udp {
		at = udpCsumOffset
		binary.BigEndian.PutUint16(l4[4:], uint16(l4Len+c.payload))
	} else {
		l4[12] = byte(l4Len/4) << 4
		l4[13] = c.flags
	}
	if c.gsoType == vnetGSONone && c.needsCsum {
		// CHECKSUM_PARTIAL: the field holds the pseudo-header sum.
		binary.BigEndian.PutUint16(l4[at:], refChecksum(refPseudo(pkt, c.v6, proto, nil), uint16(len(l4))))
	}
	return b
}

// refChecksum is the Internet checksum of b (RFC 1071) plus initial, as a
// plain sum of big-endian 16-bit words.
func refChecksum(b []byte, initial uint16) uint16 {
	sum := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}

// refPseudo is an IP pseudo-header followed by the transport header and
// payload l4.
func refPseudo(pkt []byte, v6 bool, proto byte, l4 []byte) []byte {
	var p []byte
	if v6 {
		p = append(p, pkt[8:40]...)
	} else {
		p = append(p, pkt[12:20]...)
	}
	p = append(p, 0, proto, byte(len(l4)>>8), byte(len(l4)))
	return append(p, l4...)
}

// refSplit is an independent, straightforward statement of what reading a
// virtio packet yields: wireguard-go's handleVirtioRead and gsoSplit
// (tun/offload_linux.go), plus the deviations tunsplit.go lists (CWR on
// the first segment only, UDP checksum 0 sent as 0xffff, IPv6 payload
// length with extension headers, every filled buffer returned with
// ErrTooManySegments). It checks nothing: it runs on valid input.
func refSplit(in []byte, bufs [][]byte, sizes []int, offset int) (int, error) {
	flags, gsoType := in[0], in[1]
	gsoSize := int(binary.NativeEndian.Uint16(in[4:]))
	start := int(binary.NativeEndian.Uint16(in[6:]))
	csumOff := int(binary.NativeEndian.Uint16(in[8:]))
	pkt := in[vnetHdrLen:]
	if gsoType == vnetGSONone {
		out := bufs[0][offset : offset+len(pkt)]
		copy(out, pkt)
		if flags&vnetNeedsCsum != 0 {
			at := start + csumOff
			initial := binary.BigEndian.Uint16(out[at:])
			out[at], out[at+1] = 0, 0
			binary.BigEndian.PutUint16(out[at:], ^refChecksum(out[start:], initial))
		}
		sizes[0] = len(pkt)
		return 1, nil
	}
	v6, tcp := pkt[0]>>4 == 6, gsoType != vnetGSOUDPL4
	proto, hdrLen := byte(17), start+8
	if tcp {
		proto, hdrLen = 6, start+int(pkt[start+12]>>4)*4
	}
	i := 0
	for at := hdrLen; at < len(pkt); at += gsoSize {
		if i == len(bufs) {
			return i, tun.ErrTooManySegments
		}
		end := min(at+gsoSize, len(pkt))
		total := hdrLen + end - at
		out := bufs[i][offset : offset+total]
		copy(out, pkt[:hdrLen])
		copy(out[hdrLen:], pkt[at:end])
		if v6 {
			binary.BigEndian.PutUint16(out[4:], uint16(total-40))
		} else {
			binary.BigEndian.PutUint16(out[2:], uint16(total))
			binary.BigEndian.PutUint16(out[4:], binary.BigEndian.Uint16(pkt[4:])+uint16(i))
			out[10], out[11] = 0, 0
			binary.BigEndian.PutUint16(out[10:], ^refChecksum(out[:start], 0))
		}
		l4 := out[start:]
		at := 6
		if tcp {
			at = 16
			binary.BigEndian.PutUint32(l4[4:], binary.BigEndian.Uint32(pkt[start+4:])+uint32(i*gsoSize))
			if end != len(pkt) {
				l4[13] &^= tcpFlagFIN | tcpFlagPSH
			}
			if i > 0 {
				l4[13] &^= tcpFlagCWR
			}
		} else {
			binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
		}
		l4[at], l4[at+1] = 0, 0
		c := ^refChecksum(refPseudo(pkt, v6, proto, l4), 0)
		if c == 0 && !tcp {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(l4[at:], c)
		sizes[i] = total
		i++
	}
	return i, nil
}

// checkSegments verifies the n packets in bufs on their own: checksums,
// lengths, and for GSO that the payloads and sequence numbers continue
// the original packet's (all of it if complete).
func checkSegments(in []byte, bufs [][]byte, sizes []int, n int, complete bool) error {
	pkt := in[vnetHdrLen:]
	gsoType, start := in[1], int(binary.NativeEndian.Uint16(in[6:]))
	if gsoType == vnetGSONone {
		if in[0]&vnetNeedsCsum == 0 && !bytes.Equal(bufs[0][splitTestOffset:][:sizes[0]], pkt) {
			return errors.New("packet not copied unchanged")
		}
		return nil // the checksum is checked where the input is known to be valid
	}
	v6, tcp := pkt[0]>>4 == 6, gsoType != vnetGSOUDPL4
	proto := byte(17)
	if tcp {
		proto = 6
	}
	var payload []byte
	for i := range n {
		seg := bufs[i][splitTestOffset:][:sizes[i]]
		if v6 {
			if got := int(binary.BigEndian.Uint16(seg[4:])); got != len(seg)-40 {
				return fmt.Errorf("segment %d: IPv6 payload length %d, want %d", i, got, len(seg)-40)
			}
		} else {
			if got := int(binary.BigEndian.Uint16(seg[2:])); got != len(seg) {
				return fmt.Errorf("segment %d: IPv4 total length %d, want %d", i, got, len(seg))
			}
			if c := refChecksum(seg[:start], 0); c != 0xffff {
				return fmt.Errorf("segment %d: IPv4 header checksum does not verify (sum %#x)", i, c)
			}
		}
		l4 := seg[start:]
		if c := refChecksum(refPseudo(seg, v6, proto, l4), 0); c != 0xffff {
			return fmt.Errorf("segment %d: transport checksum does not verify (sum %#x)", i, c)
		}
		hdrLen := start + 8
		if tcp {
			hdrLen = start + int(l4[12]>>4)*4
			if got, want := binary.BigEndian.Uint32(l4[4:]), binary.BigEndian.Uint32(pkt[start+4:])+uint32(len(payload)); got != want {
				return fmt.Errorf("segment %d: seq %d, want %d", i, got, want)
			}
		} else if got := int(binary.BigEndian.Uint16(l4[4:])); got != len(l4) {
			return fmt.Errorf("segment %d: UDP length %d, want %d", i, got, len(l4))
		}
		payload = append(payload, seg[hdrLen:]...)
	}
	hdrLen := start + 8
	if tcp {
		hdrLen = start + int(pkt[start+12]>>4)*4
	}
	if rest := pkt[hdrLen:]; !bytes.HasPrefix(rest, payload) || complete && len(payload) != len(rest) {
		return errors.New("segment payloads do not add up to the GSO payload")
	}
	return nil
}

func newSplitBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, splitTestOffset+size)
	}
	return bufs, make([]int, n)
}

// diffSplit runs splitVirtio and refSplit on in and describes any
// difference; ok is false when splitVirtio rejected in.
func diffSplit(in []byte, bufs, refBufs [][]byte, sizes, refSizes []int) (ok bool, diff string) {
	orig := bytes.Clone(in)
	// Different fill on each side where packets can go: a byte left
	// unwritten shows.
	nfill, width := 1, len(in)
	if len(in) >= vnetHdrLen && in[1] != vnetGSONone {
		gsoSize := int(binary.NativeEndian.Uint16(in[4:]))
		nfill = len(bufs)
		if gsoSize > 0 {
			nfill = min(nfill, len(in)/gsoSize+1)
			width = min(width, int(binary.NativeEndian.Uint16(in[6:]))+60+gsoSize)
		}
	}
	for i := range nfill {
		w := min(len(bufs[i]), splitTestOffset+width)
		for j := range w {
			bufs[i][j], refBufs[i][j] = 0xaa, 0x55
		}
	}
	n, err := splitVirtio(in, bufs, sizes, splitTestOffset)
	if !bytes.Equal(in, orig) {
		return true, "splitVirtio modified its input"
	}
	if err != nil && !errors.Is(err, tun.ErrTooManySegments) {
		return false, ""
	}
	rn, rerr := refSplit(in, refBufs, refSizes, splitTestOffset)
	if n != rn || !errors.Is(err, rerr) && (err != nil || rerr != nil) {
		return true, fmt.Sprintf("got %d packets, %v; reference %d, %v", n, err, rn, rerr)
	}
	for i := range n {
		got, want := bufs[i][splitTestOffset:][:sizes[i]], refBufs[i][splitTestOffset:][:refSizes[i]]
		if !bytes.Equal(got, want) {
			return true, fmt.Sprintf("packet %d of %d differs (-reference +got):\n%s", i, n, cmp.Diff(want, got))
		}
	}
	if err := checkSegments(in, bufs, sizes, n, err == nil); err != nil {
		return true, err.Error()
	}
	return true, ""
}

// splitCases are GSO and single packets of every kind splitVirtio takes.
func splitCases() []gsoCase {
	var cs []gsoCase
	sizes := []int{1, 7, 100, 536, 1239, 1240, 1448, 8960}
	payloads := []int{1, 2, 99, 1239, 1240, 1241, 2480, 4097, 65000}
	for i, size := range sizes {
		for j, payload := range payloads {
			k := i*len(payloads) + j
			if payload/size >= 128 {
				continue // more segments than wireguard-go's batch
			}
			flags := []byte{tcpFlagACK, tcpFlagACK | tcpFlagPSH, tcpFlagACK | tcpFlagFIN | tcpFlagPSH, tcpFlagACK | tcpFlagCWR | tcpFlagPSH, 0xff}[k%5]
			cs = append(cs,
				gsoCase{gsoType: vnetGSOTCPv4, gsoSize: size, payload: payload, flags: flags, tcpOpts: 12 * (k % 2), ipOpts: 4 * (k % 3)},
				gsoCase{gsoType: vnetGSOTCPv6, v6: true, gsoSize: size, payload: payload, flags: flags, tcpOpts: 4 * (k % 11), v6Ext: k%4 == 0},
				gsoCase{gsoType: vnetGSOUDPL4, udp: true, gsoSize: size, payload: payload, ipOpts: 4 * (k % 2)},
				gsoCase{gsoType: vnetGSOUDPL4, udp: true, v6: true, gsoSize: size, payload: payload, v6Ext: k%3 == 0},
			)
		}
	}
	for _, payload := range []int{0, 1, 2, 3, 63, 64, 65, 1200, 1201} {
		cs = append(cs,
			gsoCase{payload: payload, needsCsum: true, flags: tcpFlagACK},
			gsoCase{payload: payload, needsCsum: true, udp: true, v6: true},
			gsoCase{payload: payload, needsCsum: true, v6: true, v6Ext: true, tcpOpts: 12},
			gsoCase{payload: payload},
		)
	}
	return cs
}

func TestSplitVirtioMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	bufs, sizes := newSplitBufs(128, 65535)
	refBufs, refSizes := newSplitBufs(128, 65535)
	for _, c := range splitCases() {
		for range 4 { // new random bytes each time
			in := c.build(rng)
			ok, diff := diffSplit(in, bufs, refBufs, sizes, refSizes)
			if !ok {
				n, err := splitVirtio(in, bufs, sizes, splitTestOffset)
				t.Fatalf("%v: rejected: %d, %v", c, n, err)
			}
			if diff != "" {
				t.Fatalf("%v: %s", c, diff)
			}
			if c.gsoType == vnetGSONone && c.needsCsum {
				iphLen := int(binary.NativeEndian.Uint16(in[6:]))
				proto := byte(6)
				if c.udp {
					proto = 17
				}
				pkt := bufs[0][splitTestOffset:][:sizes[0]]
				if s := refChecksum(refPseudo(pkt, c.v6, proto, pkt[iphLen:]), 0); s != 0xffff {
					t.Fatalf("%v: completed checksum does not verify (sum %#x)", c, s)
				}
			}
		}
	}
}

func TestSplitVirtioTooManySegments(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	in := gsoCase{gsoType: vnetGSOTCPv4, gsoSize: 100, payload: 1001, flags: tcpFlagFIN}.build(rng)
	bufs, sizes := newSplitBufs(4, 1500)
	refBufs, refSizes := newSplitBufs(4, 1500)
	n, err := splitVirtio(in, bufs, sizes, splitTestOffset)
	if n != 4 || !errors.Is(err, tun.ErrTooManySegments) {
		t.Fatalf("splitVirtio = %d, %v; want 4, %v", n, err, tun.ErrTooManySegments)
	}
	if _, diff := diffSplit(in, bufs, refBufs, sizes, refSizes); diff != "" {
		t.Fatal(diff)
	}
}

// TestSplitVirtioUDPZeroChecksum makes a UDP segment whose checksum
// computes to 0, which must be sent as 0xffff.
func TestSplitVirtioUDPZeroChecksum(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, v6 := range []bool{false, true} {
		in := gsoCase{gsoType: vnetGSOUDPL4, udp: true, v6: v6, gsoSize: 1000, payload: 1500}.build(rng)
		bufs, sizes := newSplitBufs(2, 1500)
		if _, err := splitVirtio(in, bufs, sizes, splitTestOffset); err != nil {
			t.Fatal(err)
		}
		// Adding the checksum to a payload word makes the sum 0xffff.
		iphLen := int(binary.NativeEndian.Uint16(in[6:]))
		word := in[vnetHdrLen+iphLen+8:]
		c := uint32(binary.BigEndian.Uint16(bufs[0][splitTestOffset+iphLen+udpCsumOffset:]))
		w := uint32(binary.BigEndian.Uint16(word)) + c
		binary.BigEndian.PutUint16(word, uint16(w+w>>16))
		refBufs, refSizes := newSplitBufs(2, 1500)
		if _, diff := diffSplit(in, bufs, refBufs, sizes, refSizes); diff != "" {
			t.Fatal(diff)
		}
		if got := binary.BigEndian.Uint16(bufs[0][splitTestOffset+iphLen+udpCsumOffset:]); got != 0xffff {
			t.Errorf("v6=%v: UDP checksum %#04x, want 0xffff", v6, got)
		}
	}
}

func TestSplitVirtioErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	tcp4 := gsoCase{gsoType: vnetGSOTCPv4, gsoSize: 1240, payload: 5000, flags: tcpFlagACK}
	tcp6 := gsoCase{gsoType: vnetGSOTCPv6, v6: true, gsoSize: 1240, payload: 5000, flags: tcpFlagACK}
	edit := func(c gsoCase, f func(b []byte) []byte) []byte { return f(c.build(rng)) }
	put16 := func(at int, v uint16) func(b []byte) []byte {
		return func(b []byte) []byte { binary.NativeEndian.PutUint16(b[at:], v); return b }
	}
	tests := []struct {
		name     string
		in       []byte
		bufSize  int // 0: 65535
		short    int // 1 + index of a buffer cut to 100 bytes
		wantSize int // packets written before the error
	}{
		{name: "short virtio header", in: make([]byte, vnetHdrLen-1)},
		{name: "packet too long", in: make([]byte, vnetHdrLen+maxVnetPacketLen+1)},
		{name: "unknown GSO type", in: edit(tcp4, func(b []byte) []byte { b[1] = 3; return b })},
		{name: "GSO with ECN", in: edit(tcp4, func(b []byte) []byte { b[1] |= 0x80; return b })},
		{name: "empty GSO packet", in: edit(tcp4, func(b []byte) []byte { return b[:vnetHdrLen] })},
		{name: "IPv6 packet as TCPv4", in: edit(tcp6, func(b []byte) []byte { b[1] = vnetGSOTCPv4; return b })},
		{name: "IPv4 packet as TCPv6", in: edit(tcp4, func(b []byte) []byte { b[1] = vnetGSOTCPv6; return b })},
		{name: "IP version 5", in: edit(tcp4, func(b []byte) []byte { b[vnetHdrLen] = 0x55; return b })},
		{name: "IPv4 csum_start not IHL", in: edit(tcp4, put16(6, 24))},
		{name: "IPv4 IHL below 5", in: edit(tcp4, func(b []byte) []byte { b[vnetHdrLen] = 0x44; binary.NativeEndian.PutUint16(b[6:], 16); return b })},
		{name: "IPv6 csum_start in header", in: edit(tcp6, put16(6, 32))},
		{name: "TCP csum_offset", in: edit(tcp4, put16(8, 6))},
		{name: "UDP csum_offset", in: edit(gsoCase{gsoType: vnetGSOUDPL4, udp: true, gsoSize: 1000, payload: 3000}, put16(8, 16))},
		{name: "TCP data offset below 5", in: edit(tcp4, func(b []byte) []byte { b[vnetHdrLen+20+12] = 4 << 4; return b })},
		{name: "TCP header cut", in: edit(tcp4, func(b []byte) []byte { return b[:vnetHdrLen+20+12] })},
		{name: "TCP options cut", in: edit(tcp4, func(b []byte) []byte { b[vnetHdrLen+20+12] = 15 << 4; return b[:vnetHdrLen+20+40] })},
		{name: "csum_start past the end", in: edit(tcp6, put16(6, 60000))},
		{name: "gso_size 0", in: edit(tcp4, put16(4, 0))},
		{name: "segment overflows buffer", in: edit(tcp4, put16(4, 1500)), bufSize: 1500, wantSize: 0},
		{name: "third segment overflows buffer", in: tcp4.build(rng), short: 3, wantSize: 2},
		{name: "single packet overflows buffer", in: gsoCase{payload: 2000}.build(rng), bufSize: 1500},
		{name: "csum field past the end", in: edit(gsoCase{payload: 10, needsCsum: true}, put16(8, 40))},
		{name: "odd csum_offset", in: edit(gsoCase{payload: 10, needsCsum: true}, put16(8, 15))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := tt.bufSize
			if size == 0 {
				size = 65535
			}
			bufs, sizes := newSplitBufs(4, size)
			if tt.short > 0 {
				bufs[tt.short-1] = bufs[tt.short-1][:100]
			}
			n, err := splitVirtio(tt.in, bufs, sizes, splitTestOffset)
			if err == nil || errors.Is(err, tun.ErrTooManySegments) || n != tt.wantSize {
				t.Fatalf("splitVirtio = %d, %v; want %d and an error", n, err, tt.wantSize)
			}
		})
	}
}

func TestCsumCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for n := range 300 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(rng.Uint32())
		}
		if n%5 == 0 {
			clear(src) // the all-zero sum is special
		}
		if n%7 == 0 {
			for i := range src {
				src[i] = 0xff
			}
		}
		dst := make([]byte, n+8)
		initial := uint16(rng.Uint32())
		if n%3 == 0 {
			initial = 0
		}
		got := csumFinish(csumCopy(dst, src, csumNative16(initial)))
		if want := refChecksum(src, initial); got != want {
			t.Errorf("len %d: checksum %#04x, want %#04x", n, got, want)
		}
		if !bytes.Equal(dst[:n], src) || !bytes.Equal(dst[n:], make([]byte, 8)) {
			t.Errorf("len %d: copy wrong", n)
		}
		if got, want := csumFinish(csumBytes(src, csumNative16(initial))), refChecksum(src, initial); got != want {
			t.Errorf("len %d: csumBytes %#04x, want %#04x", n, got, want)
		}
	}
}

// FuzzSplitVirtio feeds splitVirtio arbitrary virtio reads: it must not
// panic or modify its input, and what it accepts must match refSplit
// and verify on its own.
func FuzzSplitVirtio(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range []gsoCase{
		{gsoType: vnetGSOTCPv4, gsoSize: 100, payload: 250, flags: tcpFlagPSH | tcpFlagFIN, ipOpts: 4, tcpOpts: 12},
		{gsoType: vnetGSOTCPv6, v6: true, gsoSize: 7, payload: 30, flags: tcpFlagCWR, v6Ext: true},
		{gsoType: vnetGSOUDPL4, udp: true, gsoSize: 64, payload: 129},
		{gsoType: vnetGSOUDPL4, udp: true, v6: true, gsoSize: 3, payload: 20},
		{gsoType: vnetGSOTCPv4, gsoSize: 1, payload: 9},
		{payload: 33, needsCsum: true},
		{payload: 20, needsCsum: true, udp: true, v6: true},
		{payload: 5},
	} {
		in := c.build(rng)
		f.Add(in)
		f.Add(in[:len(in)/2])
	}
	f.Add([]byte{})
	bufs, sizes := newSplitBufs(8, 65535)
	refBufs, refSizes := newSplitBufs(8, 65535)
	f.Fuzz(func(t *testing.T, in []byte) {
		if _, diff := diffSplit(in, bufs, refBufs, sizes, refSizes); diff != "" {
			t.Fatal(diff)
		}
	})
}

// BenchmarkSplitVirtio splits a 64 KB TCPv4 GSO packet into segments of
// 1240 bytes: splitVirtio against the same split done as wireguard-go
// does it (copy, then checksum each segment in a second pass; twoPass
// below) and against refSplit. The ratio is in the MB/s column.
func BenchmarkSplitVirtio(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 12))
	c := gsoCase{gsoType: vnetGSOTCPv4, gsoSize: 1240, payload: 65535 - 40 - 32, flags: tcpFlagACK | tcpFlagPSH, tcpOpts: 12}
	in := c.build(rng)
	bufs, sizes := newSplitBufs(128, 65535)
	for _, bm := range []struct {
		name  string
		split func(in []byte, bufs [][]byte, sizes []int, offset int) (int, error)
	}{
		{"fused", splitVirtio},
		{"twoPass", twoPassSplit},
		{"reference", refSplit},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(len(in) - vnetHdrLen))
			for b.Loop() {
				if _, err := bm.split(in, bufs, sizes, splitTestOffset); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// twoPassSplit splits like wireguard-go's gsoSplit: per segment, copy the
// headers and payload, then checksum the whole transport segment with
// its pseudo-header in a second pass. It takes TCP GSO packets only.
func twoPassSplit(in []byte, bufs [][]byte, sizes []int, offset int) (int, error) {
	h, err := decodeVnetHdr(in)
	if err != nil {
		return 0, err
	}
	pkt := in[vnetHdrLen:]
	g, err := parseGSO(pkt, h)
	if err != nil || !g.tcp {
		return 0, fmt.Errorf("twoPassSplit: %v", err)
	}
	addrs, pseudoLen := pkt[12:20], 8
	if g.v6 {
		addrs, pseudoLen = pkt[8:40], 32
	}
	var pseudo [36]byte
	copy(pseudo[:], addrs)
	pseudo[pseudoLen+1] = 6
	seq := binary.BigEndian.Uint32(pkt[g.iphLen+4:])
	i := 0
	for at := g.hdrLen; at < len(pkt); i, at = i+1, at+g.gsoSize {
		if i == len(bufs) {
			return i, tun.ErrTooManySegments
		}
		end := min(at+g.gsoSize, len(pkt))
		total := g.hdrLen + end - at
		out := bufs[i][offset : offset+total]
		copy(out, pkt[:g.hdrLen])
		copy(out[g.hdrLen:], pkt[at:end])
		if g.v6 {
			binary.BigEndian.PutUint16(out[4:], uint16(total-40))
		} else {
			binary.BigEndian.PutUint16(out[2:], uint16(total))
			binary.BigEndian.PutUint16(out[4:], binary.BigEndian.Uint16(pkt[4:])+uint16(i))
			out[10], out[11] = 0, 0
			binary.BigEndian.PutUint16(out[10:], ^csumFinish(csumBytes(out[:g.iphLen], 0)))
		}
		l4 := out[g.iphLen:]
		binary.BigEndian.PutUint32(l4[4:], seq+uint32(i*g.gsoSize))
		if end != len(pkt) {
			l4[13] &^= tcpFlagFIN | tcpFlagPSH
		}
		l4[16], l4[17] = 0, 0
		binary.BigEndian.PutUint16(pseudo[pseudoLen+2:], uint16(len(l4)))
		sum := csumBytes(pseudo[:pseudoLen+4], 0)
		binary.BigEndian.PutUint16(l4[16:], ^csumFinish(csumUnrolled(l4, sum)))
		sizes[i] = total
	}
	return i, nil
}

// csumUnrolled is csumBytes unrolled like wireguard-go's checksumNoFold,
// so that twoPassSplit costs what wireguard-go's split does.
func csumUnrolled(b []byte, sum uint64) uint64 {
	var c uint64
	for len(b) >= 64 {
		s := (*[64]byte)(b)
		sum, c = bits.Add64(sum, binary.NativeEndian.Uint64(s[0:]), 0)
		sum, c = bits.Add64(sum, binary.NativeEndian.Uint64(s[8:]), c)
		sum, c = bits.Add64(sum, binary.NativeEndian.Uint64(s[16:]), c)
		sum, c = bits.Add64(sum, binary.NativeEndian.Uint64(s[24:]), c)
		sum, c = bits.Add64(sum, binary.NativeEndian.Uint64(s[32:]), c)
		sum, c = bits.Add64(sum, binary.NativeEndian.Uint64(s[40:]), c)
		sum, c = bits.Add64(sum, binary.NativeEndian.Uint64(s[48:]), c)
		sum, c = bits.Add64(sum, binary.NativeEndian.Uint64(s[56:]), c)
		sum += c
		b = b[64:]
	}
	return csumBytes(b, sum)
}
