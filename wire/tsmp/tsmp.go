package tsmp

import (
	"encoding/binary"
	"fmt"
)

// Type is the first byte of a TSMP message, right after the IP header.
type Type byte

// TSMP message types (upstream's TSMPType). This package builds and parses
// pings and pongs; the others are named so that callers can recognise
// and drop them.
const (
	TypeRejectedConn       Type = '!'
	TypePing               Type = 'p'
	TypePong               Type = 'o'
	TypeDiscoAdvertisement Type = 'a'
)

const (
	pingLen    = 1 + 8     // type, data
	pongLen    = 1 + 8 + 2 // type, data, PeerAPI port
	minPongLen = 1 + 8     // the port is optional on input, as upstream
)

// Message is a parsed TSMP message: a Ping or a Pong.
type Message interface {
	// AppendMarshal appends the whole IP packet.
	AppendMarshal(b []byte) ([]byte, error)
	// Header is the message's IP header.
	Header() IPHeader
}

// Ping is a TSMP ping request: the receiving node (not its OS) answers
// with a Pong carrying the same Data.
type Ping struct {
	// IP is the packet's header; Proto is always Proto on the wire.
	IP   IPHeader
	Data [8]byte
}

// Pong is a TSMP pong reply.
type Pong struct {
	// IP is the packet's header; Proto is always Proto on the wire.
	IP   IPHeader
	Data [8]byte
	// PeerAPIPort is the replier's PeerAPI port on the pinged address; 0
	// when it has none.
	PeerAPIPort uint16
}

// Header implements Message.
func (p Ping) Header() IPHeader { return p.IP }

// Header implements Message.
func (p Pong) Header() IPHeader { return p.IP }

// AppendMarshal implements Message.
func (p Ping) AppendMarshal(b []byte) ([]byte, error) {
	if err := p.IP.check(); err != nil {
		return b, err
	}
	b, err := appendIP(b, p.IP, Proto, pingLen)
	if err != nil {
		return b, err
	}
	b = append(b, byte(TypePing))
	return append(b, p.Data[:]...), nil
}

// AppendMarshal implements Message.
func (p Pong) AppendMarshal(b []byte) ([]byte, error) {
	if err := p.IP.check(); err != nil {
		return b, err
	}
	b, err := appendIP(b, p.IP, Proto, pongLen)
	if err != nil {
		return b, err
	}
	b = append(b, byte(TypePong))
	b = append(b, p.Data[:]...)
	return binary.BigEndian.AppendUint16(b, p.PeerAPIPort), nil
}

// Pong is the reply a node sends to p: the reversed header (see
// IPHeader.Reply), the same data and the node's PeerAPI port for the
// pinged address (tstun's injectOutboundPong).
func (p Ping) Pong(peerAPIPort uint16) Pong {
	ip := p.IP.Reply()
	ip.Proto = Proto
	return Pong{IP: ip, Data: p.Data, PeerAPIPort: peerAPIPort}
}

// Parse parses a whole IP packet carrying a TSMP ping or pong. Other TSMP
// types, and packets of other protocols, give an error wrapping
// ErrWrongProto. Trailing bytes after a message are ignored, as upstream.
func Parse(pkt []byte) (Message, error) {
	h, body, err := ParseIP(pkt)
	if err != nil {
		return nil, err
	}
	if h.Proto != Proto {
		return nil, fmt.Errorf("tsmp: IP protocol %d: %w", h.Proto, ErrWrongProto)
	}
	if len(body) == 0 {
		return nil, fmt.Errorf("tsmp: empty message: %w", ErrShort)
	}
	switch t := Type(body[0]); t {
	case TypePing:
		if len(body) < pingLen {
			return nil, fmt.Errorf("tsmp: ping of %d bytes: %w", len(body), ErrShort)
		}
		return Ping{IP: h, Data: [8]byte(body[1:9])}, nil
	case TypePong:
		if len(body) < minPongLen {
			return nil, fmt.Errorf("tsmp: pong of %d bytes: %w", len(body), ErrShort)
		}
		p := Pong{IP: h, Data: [8]byte(body[1:9])}
		if len(body) >= pongLen {
			p.PeerAPIPort = binary.BigEndian.Uint16(body[9:11])
		}
		return p, nil
	default:
		return nil, fmt.Errorf("tsmp: message type %q: %w", byte(t), ErrWrongProto)
	}
}
