package wgengine

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// seg describes a test TCP segment.
type seg struct {
	v6      bool
	sport   uint16
	seq     uint32
	flags   byte
	payload int
	proto   byte // 0: TCP
}

const groTestOffset = 16 // wireguard-go's MessageTransportOffsetContent

// build returns a packet at groTestOffset with valid checksums and payload
// bytes derived from seq.
func (s seg) build() []byte {
	src, dst := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("198.18.0.2")
	iph := 20
	if s.v6 {
		iph = 40
		src, dst = netip.AddrFrom16(src.As16()), netip.AddrFrom16(dst.As16())
	}
	proto := s.proto
	if proto == 0 {
		proto = 6
	}
	n := iph + 20 + 12 + s.payload // 12 bytes of TCP options (timestamps)
	b := make([]byte, groTestOffset+n)
	pkt := b[groTestOffset:]
	if s.v6 {
		pkt[0] = 0x60
		binary.BigEndian.PutUint16(pkt[4:], uint16(n-40))
		pkt[6], pkt[7] = proto, 64
		a, d := src.As16(), dst.As16()
		copy(pkt[8:], a[:])
		copy(pkt[24:], d[:])
	} else {
		pkt[0] = 0x45
		binary.BigEndian.PutUint16(pkt[2:], uint16(n))
		pkt[6] = 0x40 // DF
		pkt[8], pkt[9] = 64, proto
		a, d := src.As4(), dst.As4()
		copy(pkt[12:], a[:])
		copy(pkt[16:], d[:])
		binary.BigEndian.PutUint16(pkt[10:], ^fold(sumBytes(pkt[:20], 0)))
	}
	tcp := pkt[iph:]
	binary.BigEndian.PutUint16(tcp, s.sport)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	binary.BigEndian.PutUint32(tcp[8:], 777)
	tcp[12] = 8 << 4
	tcp[13] = s.flags
	copy(tcp[20:], []byte{1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 3})
	for i := range s.payload {
		tcp[32+i] = byte(s.seq + uint32(i))
	}
	binary.BigEndian.PutUint16(tcp[16:], ^fold(l4Sum(pkt, iph)))
	return b
}

// l4Sum is the one's complement sum of pkt's transport segment with its
// pseudo header.
func l4Sum(pkt []byte, iph int) uint64 {
	l4 := pkt[iph:]
	sum := uint64(6) + uint64(len(l4))
	if iph == 40 {
		sum = sumBytes(pkt[8:40], sum)
	} else {
		sum = sumBytes(pkt[12:20], sum)
	}
	if len(l4)%2 == 1 {
		l4 = append(l4[:len(l4):len(l4)], 0)
	}
	return sumBytes(l4, sum)
}

// written is what the kernel would see of one written packet.
type written struct {
	idx       int
	flags     byte
	gsoType   byte
	gsoSize   uint16
	payload   int  // TCP payload bytes
	pshSet    bool // TCP PSH
	csumValid bool // completing the partial checksum gives a valid segment
	ipValid   bool // lengths and IPv4 header checksum agree
}

func inspect(t *testing.T, b []byte, r groRun) written {
	t.Helper()
	hdr, pkt := b[groTestOffset-vnetHdrLen:groTestOffset], b[groTestOffset:]
	w := written{idx: r.idx, flags: hdr[0], gsoType: hdr[1], gsoSize: binary.NativeEndian.Uint16(hdr[4:])}
	if !r.tcp {
		return w
	}
	iph := 20
	if pkt[0]>>4 == 6 {
		iph = 40
		w.ipValid = int(binary.BigEndian.Uint16(pkt[4:]))+40 == len(pkt)
	} else {
		w.ipValid = int(binary.BigEndian.Uint16(pkt[2:])) == len(pkt) && fold(sumBytes(pkt[:20], 0)) == 0xffff
	}
	tcp := pkt[iph:]
	w.payload = len(tcp) - int(tcp[12]>>4)*4
	w.pshSet = tcp[13]&tcpFlagPSH != 0
	if w.flags == vnetNeedsCsum {
		// What the kernel does with CHECKSUM_PARTIAL on the way out: the
		// field holds the pseudo-header sum; sum from csum_start.
		start := int(binary.NativeEndian.Uint16(hdr[6:]))
		at := start + int(binary.NativeEndian.Uint16(hdr[8:]))
		full := append([]byte(nil), pkt...)
		l4 := full[start:]
		if len(l4)%2 == 1 {
			l4 = append(l4, 0)
		}
		binary.BigEndian.PutUint16(full[at:], ^fold(sumBytes(l4, 0)))
		w.csumValid = fold(l4Sum(full, iph)) == 0xffff
	}
	return w
}

func TestTCPGRO(t *testing.T) {
	const mss = 1200
	ack, psh := byte(tcpFlagACK), byte(tcpFlagACK|tcpFlagPSH)
	gso := func(idx, segs, payload int, v6, pshSet bool) written {
		typ := byte(vnetGSOTCPv4)
		if v6 {
			typ = vnetGSOTCPv6
		}
		return written{idx: idx, flags: vnetNeedsCsum, gsoType: typ, gsoSize: mss, payload: payload, pshSet: pshSet, csumValid: true, ipValid: true}
	}
	single := func(idx, payload int, pshSet bool) written {
		return written{idx: idx, flags: vnetNeedsCsum, payload: payload, pshSet: pshSet, csumValid: true, ipValid: true}
	}
	tests := []struct {
		name string
		segs []seg
		want []written
	}{
		{
			name: "one flow in order, short last segment",
			segs: []seg{{seq: 1000, flags: ack, payload: mss}, {seq: 2200, flags: ack, payload: mss}, {seq: 3400, flags: ack, payload: mss}, {seq: 4600, flags: psh, payload: 301}},
			want: []written{gso(0, 4, 3*mss+301, false, true)},
		},
		{
			name: "ipv6",
			segs: []seg{{v6: true, seq: 1, flags: ack, payload: mss}, {v6: true, seq: 1 + mss, flags: ack, payload: mss}},
			want: []written{gso(0, 2, 2*mss, true, false)},
		},
		{
			name: "two interleaved flows",
			segs: []seg{{sport: 1, seq: 0, flags: ack, payload: mss}, {sport: 2, seq: 50, flags: ack, payload: mss}, {sport: 1, seq: mss, flags: ack, payload: mss}, {sport: 2, seq: 50 + mss, flags: ack, payload: mss}},
			want: []written{gso(0, 2, 2*mss, false, false), gso(1, 2, 2*mss, false, false)},
		},
		{
			name: "gap, PSH ends a run, nothing after a short segment",
			segs: []seg{{seq: 0, flags: ack, payload: mss}, {seq: 2 * mss, flags: psh, payload: mss}, {seq: 3 * mss, flags: ack, payload: mss}, {seq: 4 * mss, flags: ack, payload: 10}, {seq: 4*mss + 10, flags: ack, payload: 10}},
			want: []written{single(0, mss, false), single(1, mss, true), gso(2, 2, mss+10, false, false), single(4, 10, false)},
		},
		{
			name: "a pure ACK or FIN keeps its place",
			segs: []seg{{seq: 0, flags: ack, payload: mss}, {seq: mss, flags: ack}, {seq: mss, flags: ack, payload: mss}, {seq: 2 * mss, flags: ack | tcpFlagFIN, payload: 5}, {seq: 2*mss + 6, flags: ack, payload: 5}},
			want: []written{single(0, mss, false), single(1, 0, false), single(2, mss, false), single(3, 5, false), single(4, 5, false)},
		},
		{
			name: "not TCP is left alone",
			segs: []seg{{proto: 1, payload: 56}, {seq: 0, flags: ack, payload: mss}, {proto: 1, payload: 56}, {seq: mss, flags: ack, payload: mss}},
			want: []written{{idx: 0}, gso(1, 2, 2*mss, false, false), {idx: 2}},
		},
		{
			name: "at most 64 KiB per packet",
			segs: func() []seg {
				var s []seg
				for i := range 56 {
					s = append(s, seg{seq: uint32(i * mss), flags: ack, payload: mss})
				}
				return s
			}(),
			want: []written{gso(0, 54, 54*mss, false, false), gso(54, 2, 2*mss, false, false)},
		},
	}
	var g tcpGRO
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bufs := make([][]byte, len(tc.segs))
			var want []byte // payload bytes in order, per flow 1 / IPv4
			for i, s := range tc.segs {
				bufs[i] = s.build()
				if s.proto == 0 && s.sport <= 1 {
					want = append(want, bufs[i][len(bufs[i])-s.payload:]...)
				}
			}
			var got []written
			var payload []byte
			for _, r := range g.coalesce(bufs, groTestOffset) {
				var b []byte
				for _, v := range g.iovecs(nil, bufs, groTestOffset, &r) {
					b = append(b, v...)
				}
				b = append(make([]byte, groTestOffset-vnetHdrLen), b...)
				w := inspect(t, b, r)
				got = append(got, w)
				if r.tcp && tc.segs[r.idx].sport <= 1 {
					payload = append(payload, b[len(b)-w.payload:]...)
				}
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(written{})); diff != "" {
				t.Errorf("written packets (-want +got):\n%s", diff)
			}
			if !bytes.Equal(payload, want) {
				t.Errorf("payload stream differs: got %d bytes, want %d", len(payload), len(want))
			}
		})
	}
}

// sumBytes and fold are the tests' plain reference checksum, independent
// of the package's (tunsplit.go): sumBytes adds b as big-endian 16-bit
// words to sum (b has even length); fold reduces a one's complement sum to
// 16 bits.
func sumBytes(b []byte, sum uint64) uint64 {
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	return sum
}

func fold(sum uint64) uint16 {
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return uint16(sum)
}
