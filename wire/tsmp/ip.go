package tsmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// IP protocol numbers of the packets this package handles.
const (
	ProtoICMP   = 1
	ProtoICMPv6 = 58
	// Proto is TSMP's IP protocol number: 99, IANA's "any private
	// encryption scheme", which never leaves the WireGuard tunnel.
	Proto = 99
)

const (
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	maxPacketLen  = 65535
	// hopLimit is the TTL (IPv4) or hop limit (IPv6) of built packets, as
	// upstream's IP4Header.Marshal and IP6Header.Marshal.
	hopLimit = 64
)

// Errors a parser returns; they are wrapped with detail.
var (
	// ErrNotIP means the bytes are not a whole, unfragmented IPv4 or IPv6
	// packet.
	ErrNotIP = errors.New("not a whole IP packet")
	// ErrWrongProto means the packet carries another protocol or message
	// type than the parser reads.
	ErrWrongProto = errors.New("other protocol or message type")
	// ErrShort means the message after the IP header is truncated.
	ErrShort = errors.New("message too short")
)

// IPHeader is the part of an IPv4 or IPv6 header that the packets of this
// package vary. Built headers carry no options or extension headers, TTL
// 64, no DSCP/ECN and (IPv4) no flags.
type IPHeader struct {
	// Proto is the IP protocol (IPv6 next header). Marshalers set it
	// themselves; parsers report it.
	Proto uint8
	// Src and Dst are both IPv4 or both IPv6 (an IPv4-mapped IPv6
	// address is IPv6).
	Src, Dst netip.Addr
	// ID is the IPv4 identification (16 bits) or the IPv6 flow label
	// (20 bits; higher bits are ignored).
	ID uint32
}

// Len is the length of the marshaled header: 20 for IPv4, 40 for IPv6.
func (h IPHeader) Len() int {
	if h.Src.Is4() {
		return ipv4HeaderLen
	}
	return ipv6HeaderLen
}

// Reply is the header of the answer to a packet with header h: addresses
// swapped and the ID's bits flipped, as upstream's ToResponse does so that
// distinct request IDs give distinct reply IDs.
func (h IPHeader) Reply() IPHeader {
	r := IPHeader{Proto: h.Proto, Src: h.Dst, Dst: h.Src, ID: ^h.ID & 0xffff}
	if h.Src.Is6() {
		r.ID = ^h.ID & 0xfffff
	}
	return r
}

func (h IPHeader) check() error {
	switch {
	case h.Src.Is4() && h.Dst.Is4():
		return nil
	case h.Src.Is6() && h.Dst.Is6():
		return nil
	}
	return fmt.Errorf("tsmp: source %v and destination %v are not two addresses of one IP family", h.Src, h.Dst)
}

// appendIP appends h as the header of a packet whose payload is
// payloadLen bytes, with protocol proto. The caller has run h.check.
func appendIP(b []byte, h IPHeader, proto uint8, payloadLen int) ([]byte, error) {
	total := h.Len() + payloadLen
	if total > maxPacketLen {
		return b, fmt.Errorf("tsmp: packet of %d bytes is larger than %d", total, maxPacketLen)
	}
	if h.Src.Is4() {
		start := len(b)
		src, dst := h.Src.As4(), h.Dst.As4()
		b = append(b, 0x45, 0) // version 4, IHL 5; DSCP/ECN 0
		b = binary.BigEndian.AppendUint16(b, uint16(total))
		b = binary.BigEndian.AppendUint16(b, uint16(h.ID))
		b = append(b, 0, 0, hopLimit, proto, 0, 0) // no flags, no offset; checksum below
		b = append(b, src[:]...)
		b = append(b, dst[:]...)
		binary.BigEndian.PutUint16(b[start+10:], fold(sum(b[start:start+ipv4HeaderLen], 0)))
		return b, nil
	}
	src, dst := h.Src.As16(), h.Dst.As16()
	b = binary.BigEndian.AppendUint32(b, 6<<28|h.ID&0xfffff)
	b = binary.BigEndian.AppendUint16(b, uint16(payloadLen))
	b = append(b, proto, hopLimit)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	return b, nil
}

// ParseIP splits pkt into its IP header and payload (which aliases pkt).
// Bytes after the length the header gives are ignored. It rejects IPv4
// fragments (a fragment is never a whole message) and does not follow
// IPv6 extension headers: the payload's protocol is the Next Header field,
// as upstream's parser reads it. The IPv4 header checksum is not checked
// (tailscaled does not either; WireGuard already authenticated the bytes).
func ParseIP(pkt []byte) (IPHeader, []byte, error) {
	var h IPHeader
	if len(pkt) == 0 {
		return h, nil, fmt.Errorf("tsmp: empty packet: %w", ErrNotIP)
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4HeaderLen {
			return h, nil, fmt.Errorf("tsmp: IPv4 packet of %d bytes: %w", len(pkt), ErrNotIP)
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		if ihl < ipv4HeaderLen || total < ihl || total > len(pkt) {
			return h, nil, fmt.Errorf("tsmp: IPv4 header length %d, total length %d, %d bytes: %w", ihl, total, len(pkt), ErrNotIP)
		}
		if binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 {
			return h, nil, fmt.Errorf("tsmp: IPv4 fragment: %w", ErrNotIP)
		}
		h.Proto = pkt[9]
		h.ID = uint32(binary.BigEndian.Uint16(pkt[4:6]))
		h.Src = netip.AddrFrom4([4]byte(pkt[12:16]))
		h.Dst = netip.AddrFrom4([4]byte(pkt[16:20]))
		return h, pkt[ihl:total], nil
	case 6:
		if len(pkt) < ipv6HeaderLen {
			return h, nil, fmt.Errorf("tsmp: IPv6 packet of %d bytes: %w", len(pkt), ErrNotIP)
		}
		plen := int(binary.BigEndian.Uint16(pkt[4:6]))
		if ipv6HeaderLen+plen > len(pkt) {
			return h, nil, fmt.Errorf("tsmp: IPv6 payload length %d, %d bytes: %w", plen, len(pkt), ErrNotIP)
		}
		h.Proto = pkt[6]
		h.ID = binary.BigEndian.Uint32(pkt[0:4]) & 0xfffff
		h.Src = netip.AddrFrom16([16]byte(pkt[8:24]))
		h.Dst = netip.AddrFrom16([16]byte(pkt[24:40]))
		return h, pkt[ipv6HeaderLen : ipv6HeaderLen+plen], nil
	}
	return h, nil, fmt.Errorf("tsmp: IP version %d: %w", pkt[0]>>4, ErrNotIP)
}

// sum adds b to the RFC 1071 ones' complement sum acc (unfolded). An odd
// final byte is padded with zero, so only the last chunk may be odd.
func sum(b []byte, acc uint32) uint32 {
	for len(b) >= 2 {
		acc += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint32(b[0]) << 8
	}
	return acc
}

// fold folds acc to 16 bits and complements it: the checksum field value.
func fold(acc uint32) uint16 {
	for acc>>16 != 0 {
		acc = acc>>16 + acc&0xffff
	}
	return ^uint16(acc)
}
