package disco

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"golang.org/x/crypto/nacl/box"

	"weft.dev/weft/wire/key"
)

// Wire constants (disco/disco.go upstream; derp-disco.md §3.2).
const (
	// Magic starts every disco packet: "TS" followed by U+1F4AC in UTF-8.
	Magic = "TS\xf0\x9f\x92\xac"
	// KeyLen is the length of the clear-text sender disco key.
	KeyLen = 32
	// NonceLen is the NaCl box nonce length.
	NonceLen = 24
	// HeaderLen is magic ‖ sender key ‖ nonce: the minimum of a sealed packet.
	HeaderLen = len(Magic) + KeyLen + NonceLen
	// Overhead is everything a sealed packet adds to the inner payload.
	Overhead = HeaderLen + box.Overhead
	// TxIDLen is the length of a Ping/Pong transaction ID.
	TxIDLen = 12
	// EndpointLen is one CallMeMaybe entry: 16-byte IP and 2-byte port.
	EndpointLen = 18

	pingLenNoKey = TxIDLen
	pingLen      = TxIDLen + KeyLen
	pongLen      = TxIDLen + 16 + 2
)

// MessageType is the first byte of the inner payload.
type MessageType byte

// Message types. Only the first three are implemented; the others exist so
// logs can name them.
const (
	TypePing                             MessageType = 0x01
	TypePong                             MessageType = 0x02
	TypeCallMeMaybe                      MessageType = 0x03
	TypeBindUDPRelayEndpoint             MessageType = 0x04
	TypeBindUDPRelayEndpointChallenge    MessageType = 0x05
	TypeBindUDPRelayEndpointAnswer       MessageType = 0x06
	TypeCallMeMaybeVia                   MessageType = 0x07
	TypeAllocateUDPRelayEndpointRequest  MessageType = 0x08
	TypeAllocateUDPRelayEndpointResponse MessageType = 0x09
)

// String names t for logs.
func (t MessageType) String() string {
	switch t {
	case TypePing:
		return "ping"
	case TypePong:
		return "pong"
	case TypeCallMeMaybe:
		return "call-me-maybe"
	}
	return fmt.Sprintf("disco-type-%#x", byte(t))
}

// Errors returned by the parsers; callers drop such packets silently.
var (
	ErrNotDisco    = errors.New("disco: not a disco packet")
	ErrOpen        = errors.New("disco: box does not open")
	ErrShort       = errors.New("disco: message too short")
	ErrUnknownType = errors.New("disco: unknown message type")
)

// TxID identifies a Ping and the Pong answering it.
type TxID [TxIDLen]byte

// NewTxID returns a random TxID.
func NewTxID() TxID {
	var t TxID
	rand.Read(t[:]) // never fails since Go 1.24
	return t
}

// Message is a disco message body.
type Message interface {
	// AppendMarshal appends the inner payload (type, version, body).
	AppendMarshal(b []byte) []byte
}

// Ping asks the receiver to answer with a Pong on the path it came from.
type Ping struct {
	TxID TxID
	// NodeKey is the sender's node key; zero when an old client left it out.
	NodeKey key.NodePublic
	// Padding is the number of zero bytes after the body (path-MTU probes).
	Padding int
}

// AppendMarshal implements Message. A Ping always carries NodeKey (even a
// zero one), as 1.102 does.
func (m *Ping) AppendMarshal(b []byte) []byte {
	b = append(b, byte(TypePing), 0)
	b = append(b, m.TxID[:]...)
	k := m.NodeKey.Raw32()
	b = append(b, k[:]...)
	for range max(m.Padding, 0) {
		b = append(b, 0)
	}
	return b
}

// Pong answers a Ping.
type Pong struct {
	TxID TxID
	// Src is the Ping's source as the responder saw it.
	Src netip.AddrPort
}

// AppendMarshal implements Message.
func (m *Pong) AppendMarshal(b []byte) []byte {
	b = append(b, byte(TypePong), 0)
	b = append(b, m.TxID[:]...)
	return appendAddrPort(b, m.Src)
}

// CallMeMaybe carries the sender's endpoints and asks the receiver to ping
// them (sent over DERP only).
type CallMeMaybe struct {
	// MyNumber is the sender's full current endpoint list.
	MyNumber []netip.AddrPort
}

// AppendMarshal implements Message.
func (m *CallMeMaybe) AppendMarshal(b []byte) []byte {
	b = append(b, byte(TypeCallMeMaybe), 0)
	for _, ap := range m.MyNumber {
		b = appendAddrPort(b, ap)
	}
	return b
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	a := ap.Addr().As16() // v4 as v4-mapped; the zero Addr as ::
	b = append(b, a[:]...)
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

func parseAddrPort(b []byte) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[:16])).Unmap(), binary.BigEndian.Uint16(b[16:18]))
}

// Parse parses an inner payload (type ‖ version ‖ body). Bytes beyond what
// a message type defines are ignored or, for Ping, counted as padding.
// Unknown types return ErrUnknownType.
func Parse(p []byte) (Message, error) {
	if len(p) < 2 {
		return nil, ErrShort
	}
	t, ver, body := MessageType(p[0]), p[1], p[2:]
	switch t {
	case TypePing:
		if len(body) < pingLenNoKey {
			return nil, ErrShort
		}
		m := &Ping{TxID: TxID(body[:TxIDLen])}
		if len(body) >= pingLen {
			m.NodeKey = key.NodePublicFromRaw32([32]byte(body[TxIDLen:pingLen]))
			m.Padding = len(body) - pingLen
		} else {
			m.Padding = len(body) - pingLenNoKey
		}
		return m, nil
	case TypePong:
		if len(body) < pongLen {
			return nil, ErrShort
		}
		return &Pong{TxID: TxID(body[:TxIDLen]), Src: parseAddrPort(body[TxIDLen:])}, nil
	case TypeCallMeMaybe:
		m := new(CallMeMaybe)
		// Upstream parses a wrong version or a ragged length as an empty
		// list rather than an error (disco.parseCallMeMaybe).
		if ver != 0 || len(body)%EndpointLen != 0 {
			return m, nil
		}
		m.MyNumber = make([]netip.AddrPort, 0, len(body)/EndpointLen)
		for ; len(body) >= EndpointLen; body = body[EndpointLen:] {
			m.MyNumber = append(m.MyNumber, parseAddrPort(body))
		}
		return m, nil
	}
	return nil, fmt.Errorf("%w %v", ErrUnknownType, t)
}

// Looks reports whether pkt is classified as disco on the UDP socket
// (derp-disco.md §4.1): at least magic ‖ key long and starting with Magic.
// The longer minimum of a sealed packet is checked by Open.
func Looks(pkt []byte) bool {
	return len(pkt) >= len(Magic)+KeyLen && string(pkt[:len(Magic)]) == Magic
}

// Sender returns the clear-text sender disco key of pkt.
func Sender(pkt []byte) (key.DiscoPublic, error) {
	if !Looks(pkt) {
		return key.DiscoPublic{}, ErrNotDisco
	}
	return key.DiscoPublicFromRaw32([32]byte(pkt[len(Magic) : len(Magic)+KeyLen])), nil
}

// SharedKey is the precomputed NaCl box key between two disco keys
// (crypto_box_beforenm), as upstream caches per peer.
type SharedKey [32]byte

// Shared precomputes the box key between priv and peer.
func Shared(priv key.DiscoPrivate, peer key.DiscoPublic) SharedKey {
	var sk [32]byte
	p, s := peer.Raw32(), priv.Raw32()
	box.Precompute(&sk, &p, &s)
	return SharedKey(sk)
}

// Seal appends a complete disco packet carrying m from self, boxed with sk
// and a fresh random nonce from r (nil means crypto/rand).
func Seal(dst []byte, self key.DiscoPublic, sk *SharedKey, m Message, r io.Reader) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	var nonce [NonceLen]byte
	if _, err := io.ReadFull(r, nonce[:]); err != nil {
		return dst, fmt.Errorf("disco: nonce: %w", err)
	}
	var inner [pingLen + 2]byte // Ping/Pong fit without allocating
	plain := m.AppendMarshal(inner[:0])
	dst = append(dst, Magic...)
	k := self.Raw32()
	dst = append(dst, k[:]...)
	dst = append(dst, nonce[:]...)
	return box.SealAfterPrecomputation(dst, plain, &nonce, (*[32]byte)(sk)), nil
}

// Open opens a sealed disco packet with sk (the shared key with the sender
// named by Sender(pkt)) and parses the inner message. scratch, if large
// enough, holds the plaintext.
func Open(pkt []byte, sk *SharedKey, scratch []byte) (Message, error) {
	if !Looks(pkt) {
		return nil, ErrNotDisco
	}
	if len(pkt) < HeaderLen+box.Overhead {
		return nil, ErrShort
	}
	nonce := [NonceLen]byte(pkt[len(Magic)+KeyLen : HeaderLen])
	plain, ok := box.OpenAfterPrecomputation(scratch[:0], pkt[HeaderLen:], &nonce, (*[32]byte)(sk))
	if !ok {
		return nil, ErrOpen
	}
	return Parse(plain)
}
