package tsmp

import (
	"encoding/binary"
	"fmt"
)

// ICMP echo message types (RFC 792, RFC 4443).
const (
	icmpEchoReply     = 0
	icmpEchoRequest   = 8
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
	echoHeaderLen     = 8 // type, code, checksum, identifier, sequence
)

// Echo is an ICMP (IPv4) or ICMPv6 (IPv6) echo request or reply; the IP
// family of IP.Src picks which.
type Echo struct {
	// IP is the packet's header; Proto is set from the family on the wire.
	IP IPHeader
	// Reply is true for an echo reply, false for a request.
	Reply bool
	// ID and Seq are the identifier and sequence number.
	ID, Seq uint16
	// Data follows the echo header. Parsed, it aliases the packet.
	Data []byte
}

// Response is the reply a host sends to the echo request e: reversed
// header (IPHeader.Reply), same identifier, sequence and data.
func (e Echo) Response() Echo {
	return Echo{IP: e.IP.Reply(), Reply: true, ID: e.ID, Seq: e.Seq, Data: e.Data}
}

// AppendMarshal appends e as a whole IP packet with correct checksums.
func (e Echo) AppendMarshal(b []byte) ([]byte, error) {
	if err := e.IP.check(); err != nil {
		return b, err
	}
	v4 := e.IP.Src.Is4()
	proto, typ := uint8(ProtoICMPv6), uint8(icmpv6EchoRequest)
	switch {
	case v4 && e.Reply:
		proto, typ = ProtoICMP, icmpEchoReply
	case v4:
		proto, typ = ProtoICMP, icmpEchoRequest
	case e.Reply:
		typ = icmpv6EchoReply
	}
	msgLen := echoHeaderLen + len(e.Data)
	b, err := appendIP(b, e.IP, proto, msgLen)
	if err != nil {
		return b, err
	}
	start := len(b)
	b = append(b, typ, 0, 0, 0) // code 0; checksum below
	b = binary.BigEndian.AppendUint16(b, e.ID)
	b = binary.BigEndian.AppendUint16(b, e.Seq)
	b = append(b, e.Data...)
	var acc uint32
	if !v4 {
		acc = pseudoHeaderSum(e.IP, ProtoICMPv6, msgLen)
	}
	binary.BigEndian.PutUint16(b[start+2:], fold(sum(b[start:], acc)))
	return b, nil
}

// pseudoHeaderSum is the IPv6 upper-layer pseudo-header's contribution to
// a checksum (RFC 8200 section 8.1).
func pseudoHeaderSum(h IPHeader, proto uint8, length int) uint32 {
	src, dst := h.Src.As16(), h.Dst.As16()
	acc := sum(src[:], 0)
	acc = sum(dst[:], acc)
	acc += uint32(length>>16) + uint32(length&0xffff)
	return acc + uint32(proto)
}

// ParseEcho parses a whole IP packet carrying an ICMP echo request or
// reply (ICMPv6 for IPv6) with code 0. Other ICMP messages and protocols
// give an error wrapping ErrWrongProto. The ICMP checksum is not verified:
// tailscaled matches echo replies without checking it, and WireGuard
// already authenticated the packet.
func ParseEcho(pkt []byte) (Echo, error) {
	h, body, err := ParseIP(pkt)
	if err != nil {
		return Echo{}, err
	}
	v4 := h.Src.Is4()
	switch {
	case v4 && h.Proto != ProtoICMP, !v4 && h.Proto != ProtoICMPv6:
		return Echo{}, fmt.Errorf("tsmp: IP protocol %d: %w", h.Proto, ErrWrongProto)
	case len(body) < echoHeaderLen:
		return Echo{}, fmt.Errorf("tsmp: ICMP message of %d bytes: %w", len(body), ErrShort)
	case body[1] != 0:
		return Echo{}, fmt.Errorf("tsmp: ICMP type %d code %d: %w", body[0], body[1], ErrWrongProto)
	}
	e := Echo{IP: h, ID: binary.BigEndian.Uint16(body[4:6]), Seq: binary.BigEndian.Uint16(body[6:8]), Data: body[8:]}
	switch {
	case v4 && body[0] == icmpEchoRequest, !v4 && body[0] == icmpv6EchoRequest:
	case v4 && body[0] == icmpEchoReply, !v4 && body[0] == icmpv6EchoReply:
		e.Reply = true
	default:
		return Echo{}, fmt.Errorf("tsmp: ICMP type %d: %w", body[0], ErrWrongProto)
	}
	return e, nil
}
