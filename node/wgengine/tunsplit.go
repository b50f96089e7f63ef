package wgengine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"golang.zx2c4.com/wireguard/tun"
)

// Splitting of what a TUN with IFF_VNET_HDR hands to its reader: one
// virtio_net_hdr and one IP packet, which with TSO/USO on is a GSO packet
// of up to 64 KB that must leave as MTU-sized segments.
//
// This does what wireguard-go's handleVirtioRead/gsoSplit do
// (tun/offload_linux.go) with less CPU: each segment's payload is copied
// and checksummed in one pass (csumCopy), and the checksum of the
// pseudo-header and of the transport header is summed once per GSO packet
// and adjusted per segment for the fields that change (lengths, IPv4 ID,
// TCP sequence number and flags). The output is byte-identical to
// wireguard-go's except where wireguard-go follows no standard and the
// kernel's own software segmentation (tcp_gso_segment, __udp_gso_segment)
// does otherwise:
//   - CWR is kept on the first segment only (wireguard-go copies it to
//     every segment; it cannot arrive in practice, as the kernel flags a
//     GSO packet with CWR as GSO_ECN, which both reject);
//   - a computed UDP checksum of 0 is sent as 0xffff (0 means "none", and
//     IPv6 receivers drop it);
//   - the IPv6 payload length counts extension headers before the
//     transport header (wireguard-go leaves them out);
//   - when the segments do not fit in bufs, every filled buffer is
//     returned with tun.ErrTooManySegments (wireguard-go returns one less).
//
// The input is checked more strictly than wireguard-go does, so that a
// malformed header yields an error, never a panic or a garbled segment.

// More virtio_net_hdr and header constants (the first ones are in tcpgro.go).
const (
	vnetGSOUDPL4     = 5 // VIRTIO_NET_HDR_GSO_UDP_L4
	udpCsumOffset    = 6
	tcpFlagCWR       = 0x80
	maxVnetPacketLen = 65535 // an IP packet the TUN reads after the virtio header
)

// vnetHdr is a decoded virtio_net_hdr (host byte order, as the TUN driver
// uses without TUNSETVNETLE/BE).
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16 // not trusted, like wireguard-go: see parseGSO
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func decodeVnetHdr(b []byte) (vnetHdr, error) {
	if len(b) < vnetHdrLen {
		return vnetHdr{}, fmt.Errorf("wgengine: TUN read of %d bytes is shorter than a virtio header", len(b))
	}
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.NativeEndian.Uint16(b[2:]),
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}, nil
}

// splitVirtio splits in, a virtio header and the IP packet after it, into
// bufs at offset and sets sizes, like wireguard-go's NativeTun.Read. It
// does not modify in. It returns the number of packets written.
func splitVirtio(in []byte, bufs [][]byte, sizes []int, offset int) (int, error) {
	h, err := decodeVnetHdr(in)
	if err != nil {
		return 0, err
	}
	pkt := in[vnetHdrLen:]
	if len(pkt) > maxVnetPacketLen {
		return 0, fmt.Errorf("wgengine: TUN packet of %d bytes is too long", len(pkt))
	}
	if len(bufs) == 0 || len(sizes) < len(bufs) || offset < 0 {
		return 0, errors.New("wgengine: TUN read needs buffers")
	}
	if h.gsoType == vnetGSONone {
		return completeNoGSO(pkt, h, bufs, sizes, offset)
	}
	g, err := parseGSO(pkt, h)
	if err != nil {
		return 0, err
	}
	return g.split(pkt, bufs, sizes, offset)
}

// completeNoGSO copies a single packet to bufs[0], completing its
// checksum if the kernel left it partial (CHECKSUM_PARTIAL: the field
// holds the pseudo-header sum; the sum from csum_start to the end is
// added to it).
func completeNoGSO(pkt []byte, h vnetHdr, bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset > len(bufs[0]) || len(pkt) > len(bufs[0])-offset {
		return 0, fmt.Errorf("wgengine: TUN packet of %d bytes overflows a %d-byte buffer", len(pkt), len(bufs[0])-offset)
	}
	out := bufs[0][offset:]
	if h.flags&vnetNeedsCsum == 0 {
		sizes[0] = copy(out, pkt)
		return 1, nil
	}
	start, at := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
	if at+2 > len(pkt) || h.csumOffset%2 != 0 {
		return 0, fmt.Errorf("wgengine: TUN packet of %d bytes has checksum start %d offset %d", len(pkt), h.csumStart, h.csumOffset)
	}
	copy(out, pkt[:start])
	// The field's initial value is summed in place: it is a word at an
	// even distance from start, so this equals zeroing it and adding it.
	sum := csumCopy(out[start:], pkt[start:], 0)
	binary.BigEndian.PutUint16(out[at:], ^csumFinish(sum))
	sizes[0] = len(pkt)
	return 1, nil
}

// gsoPacket is a checked GSO packet's layout.
type gsoPacket struct {
	iphLen  int // csum_start: IP header and extension headers
	hdrLen  int // iphLen and the TCP or UDP header
	gsoSize int
	v6, tcp bool
}

// parseGSO checks pkt against h. Like wireguard-go it takes the transport
// header length from the packet, not h.hdrLen (which is the whole first
// packet on the forwarding path).
func parseGSO(pkt []byte, h vnetHdr) (gsoPacket, error) {
	g := gsoPacket{iphLen: int(h.csumStart), gsoSize: int(h.gsoSize)}
	var wantCsumOffset uint16
	switch h.gsoType {
	case vnetGSOTCPv4, vnetGSOTCPv6:
		g.tcp, wantCsumOffset = true, tcpCsumOffset
	case vnetGSOUDPL4:
		wantCsumOffset = udpCsumOffset
	default:
		return g, fmt.Errorf("wgengine: unsupported virtio GSO type %#x", h.gsoType)
	}
	if len(pkt) == 0 {
		return g, errors.New("wgengine: empty GSO packet")
	}
	switch v := pkt[0] >> 4; {
	case v == 4 && h.gsoType != vnetGSOTCPv6:
		if len(pkt) < 20 || int(pkt[0]&0xf)*4 != g.iphLen || g.iphLen < 20 {
			return g, fmt.Errorf("wgengine: GSO IPv4 header length %d does not match checksum start %d", int(pkt[0]&0xf)*4, h.csumStart)
		}
	case v == 6 && h.gsoType != vnetGSOTCPv4:
		g.v6 = true
		if g.iphLen < 40 {
			return g, fmt.Errorf("wgengine: GSO IPv6 checksum start %d is inside the IPv6 header", h.csumStart)
		}
	default:
		return g, fmt.Errorf("wgengine: IP version %d with virtio GSO type %d", v, h.gsoType)
	}
	if h.csumOffset != wantCsumOffset {
		return g, fmt.Errorf("wgengine: GSO checksum offset %d, want %d", h.csumOffset, wantCsumOffset)
	}
	g.hdrLen = g.iphLen + 8
	if g.tcp {
		if len(pkt) <= g.iphLen+12 {
			return g, fmt.Errorf("wgengine: GSO packet of %d bytes is too short for TCP at %d", len(pkt), g.iphLen)
		}
		n := int(pkt[g.iphLen+12]>>4) * 4
		if n < 20 {
			return g, fmt.Errorf("wgengine: TCP header length %d is invalid", n)
		}
		g.hdrLen = g.iphLen + n
	}
	if len(pkt) < g.hdrLen {
		return g, fmt.Errorf("wgengine: GSO packet of %d bytes is shorter than its %d bytes of headers", len(pkt), g.hdrLen)
	}
	if g.gsoSize == 0 {
		return g, errors.New("wgengine: GSO packet with gso_size 0")
	}
	return g, nil
}

// split writes the segments of pkt to bufs.
func (g gsoPacket) split(pkt []byte, bufs [][]byte, sizes []int, offset int) (int, error) {
	// Sums of what every segment shares, as csumCopy's native-order
	// words: the IPv4 header without total length, ID and checksum; the
	// pseudo-header without length; the transport header without the
	// words that change (TCP: sequence number, offset/flags, checksum;
	// UDP: length, checksum).
	var ipSum uint64
	var ipID uint16
	var addrs []byte
	if g.v6 {
		addrs = pkt[8:40]
	} else {
		ipID = binary.BigEndian.Uint16(pkt[4:])
		var iph [60]byte
		copy(iph[:], pkt[:g.iphLen])
		clear(iph[2:6])
		clear(iph[10:12])
		ipSum = csumFold(csumBytes(iph[:g.iphLen], 0))
		addrs = pkt[12:20]
	}
	var th [60]byte
	l4h := th[:g.hdrLen-g.iphLen]
	copy(l4h, pkt[g.iphLen:g.hdrLen])
	proto := uint16(17)
	var seq uint32
	var offFlags uint16
	if g.tcp {
		proto = 6
		seq = binary.BigEndian.Uint32(l4h[4:])
		offFlags = binary.BigEndian.Uint16(l4h[12:])
		clear(l4h[12:14])
		clear(l4h[16:18])
	}
	clear(l4h[4:8]) // TCP sequence number; UDP length and checksum
	l4Sum := csumFold(csumBytes(l4h, csumBytes(addrs, csumNative16(proto))))

	data := pkt[g.hdrLen:]
	i := 0
	for ; len(data) > 0; i++ {
		if i == len(bufs) {
			return i, tun.ErrTooManySegments
		}
		n := min(g.gsoSize, len(data))
		total := g.hdrLen + n
		if offset > len(bufs[i]) || total > len(bufs[i])-offset {
			return i, fmt.Errorf("wgengine: GSO segment of %d bytes overflows a %d-byte buffer", total, len(bufs[i])-offset)
		}
		out := bufs[i][offset : offset+total]
		copy(out, pkt[:g.hdrLen])
		if g.v6 {
			binary.BigEndian.PutUint16(out[4:], uint16(total-40))
		} else {
			id := ipID + uint16(i)
			binary.BigEndian.PutUint16(out[2:], uint16(total))
			binary.BigEndian.PutUint16(out[4:], id)
			s := ipSum + csumNative16(uint16(total)) + csumNative16(id)
			binary.BigEndian.PutUint16(out[10:], ^csumFinish(s))
		}
		l4 := out[g.iphLen:]
		l4Len := uint16(total - g.iphLen)
		s := l4Sum + csumNative16(l4Len)
		if g.tcp {
			f := offFlags
			if i > 0 {
				f &^= tcpFlagCWR
			}
			if n < len(data) {
				f &^= tcpFlagFIN | tcpFlagPSH
			}
			binary.BigEndian.PutUint32(l4[4:], seq)
			binary.BigEndian.PutUint16(l4[12:], f)
			s += csumNative16(uint16(seq>>16)) + csumNative16(uint16(seq)) + csumNative16(f)
			seq += uint32(g.gsoSize)
		} else {
			binary.BigEndian.PutUint16(l4[4:], l4Len)
			s += csumNative16(l4Len)
		}
		c := ^csumFinish(csumCopy(out[g.hdrLen:], data[:n], s))
		if c == 0 && !g.tcp {
			c = 0xffff
		}
		if g.tcp {
			binary.BigEndian.PutUint16(l4[tcpCsumOffset:], c)
		} else {
			binary.BigEndian.PutUint16(l4[udpCsumOffset:], c)
		}
		sizes[i] = total
		data = data[n:]
	}
	return i, nil
}

// The checksum helpers keep the Internet checksum as a sum of 64-bit
// words loaded in host byte order with end-around carry (RFC 1071: the
// sum is byte-order independent, so only the final 16 bits are swapped).
// Every range summed into one checksum starts an even number of bytes
// after the checksum's start.

// csumCopy copies src to dst and returns sum plus the sum of src. It reads
// src once: each 8-byte word is loaded, stored and added with carry.
func csumCopy(dst, src []byte, sum uint64) uint64 {
	dst = dst[:len(src)]
	var c uint64
	for len(src) >= 64 {
		s, d := (*[64]byte)(src), (*[64]byte)(dst)
		w0 := binary.NativeEndian.Uint64(s[0:])
		w1 := binary.NativeEndian.Uint64(s[8:])
		w2 := binary.NativeEndian.Uint64(s[16:])
		w3 := binary.NativeEndian.Uint64(s[24:])
		w4 := binary.NativeEndian.Uint64(s[32:])
		w5 := binary.NativeEndian.Uint64(s[40:])
		w6 := binary.NativeEndian.Uint64(s[48:])
		w7 := binary.NativeEndian.Uint64(s[56:])
		binary.NativeEndian.PutUint64(d[0:], w0)
		binary.NativeEndian.PutUint64(d[8:], w1)
		binary.NativeEndian.PutUint64(d[16:], w2)
		binary.NativeEndian.PutUint64(d[24:], w3)
		binary.NativeEndian.PutUint64(d[32:], w4)
		binary.NativeEndian.PutUint64(d[40:], w5)
		binary.NativeEndian.PutUint64(d[48:], w6)
		binary.NativeEndian.PutUint64(d[56:], w7)
		sum, c = bits.Add64(sum, w0, 0)
		sum, c = bits.Add64(sum, w1, c)
		sum, c = bits.Add64(sum, w2, c)
		sum, c = bits.Add64(sum, w3, c)
		sum, c = bits.Add64(sum, w4, c)
		sum, c = bits.Add64(sum, w5, c)
		sum, c = bits.Add64(sum, w6, c)
		sum, c = bits.Add64(sum, w7, c)
		sum += c
		src, dst = src[64:], dst[64:]
	}
	for len(src) >= 8 {
		w := binary.NativeEndian.Uint64(src)
		binary.NativeEndian.PutUint64(dst, w)
		sum, c = bits.Add64(sum, w, 0)
		sum += c
		src, dst = src[8:], dst[8:]
	}
	copy(dst, src)
	return csumTail(src, sum)
}

// csumBytes returns sum plus the sum of b (for headers: short, so not
// unrolled).
func csumBytes(b []byte, sum uint64) uint64 {
	var c uint64
	for len(b) >= 8 {
		sum, c = bits.Add64(sum, binary.NativeEndian.Uint64(b), 0)
		sum += c
		b = b[8:]
	}
	return csumTail(b, sum)
}

// csumTail adds the last 0-7 bytes of a range; an odd last byte is the
// first byte of a word whose second byte is zero.
func csumTail(b []byte, sum uint64) uint64 {
	var w uint64
	if len(b) >= 4 {
		w = uint64(binary.NativeEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		w += uint64(binary.NativeEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		w += uint64(binary.NativeEndian.Uint16([]byte{b[0], 0}))
	}
	sum, c := bits.Add64(sum, w, 0)
	return sum + c
}

// csumNative16 is the big-endian 16-bit field value v as a word of the
// sum (the field's two bytes loaded in host order).
func csumNative16(v uint16) uint64 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return uint64(binary.NativeEndian.Uint16(b[:]))
}

// csumFold folds sum to 16 bits without changing it modulo 0xffff or
// whether it is zero, so that a few words can be added without overflow.
func csumFold(sum uint64) uint64 {
	sum = sum>>32 + sum&0xffffffff
	sum = sum>>32 + sum&0xffffffff
	sum = sum>>16 + sum&0xffff
	return sum>>16 + sum&0xffff
}

// csumFinish folds sum to 16 bits and returns it as the big-endian value
// of the checksum field (before the final complement).
func csumFinish(sum uint64) uint16 {
	sum = csumFold(sum)
	var b [2]byte
	binary.NativeEndian.PutUint16(b[:], uint16(sum))
	return binary.BigEndian.Uint16(b[:])
}
