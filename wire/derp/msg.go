package derp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"weft.dev/weft/wire/key"
)

// PeerGoneReason says why a PeerGone frame was sent.
type PeerGoneReason byte

// PeerGone reasons.
const (
	// PeerGoneDisconnected: a peer that sent you packets left the region.
	PeerGoneDisconnected PeerGoneReason = 0x00
	// PeerGoneNotHere: you sent a disco packet to a key the server does not know.
	PeerGoneNotHere PeerGoneReason = 0x01
	// PeerGoneMeshConnBroke is synthesised locally when a mesh connection
	// drops; it never appears on the wire.
	PeerGoneMeshConnBroke PeerGoneReason = 0xf0
)

// PeerPresentFlags describes a client announced in PeerPresent.
type PeerPresentFlags byte

// PeerPresent flags. Zero means "old server, unknown".
const (
	PeerPresentIsRegular  PeerPresentFlags = 1 << 0
	PeerPresentIsMeshPeer PeerPresentFlags = 1 << 1
	PeerPresentIsProber   PeerPresentFlags = 1 << 2
	PeerPresentNotIdeal   PeerPresentFlags = 1 << 3
)

// PeerPresent is the payload of a PeerPresent frame.
type PeerPresent struct {
	Key   key.NodePublic
	Addr  netip.AddrPort // remote address of the peer's connection; may be invalid
	Flags PeerPresentFlags
}

func keyAt(p []byte) key.NodePublic { return key.NodePublicFromRaw32([32]byte(p[:KeyLen])) }

// AppendKey appends a raw 32-byte key.
func AppendKey(b []byte, k key.NodePublic) []byte {
	r := k.Raw32()
	return append(b, r[:]...)
}

// ParseSendPacket splits a SendPacket payload into destination and packet.
func ParseSendPacket(p []byte) (dst key.NodePublic, pkt []byte, err error) {
	if len(p) < KeyLen {
		return dst, nil, fmt.Errorf("%w: SendPacket of %d bytes", ErrShortFrame, len(p))
	}
	if len(p)-KeyLen > MaxPacketSize {
		return dst, nil, fmt.Errorf("%w: SendPacket of %d bytes", ErrFrameTooLarge, len(p))
	}
	return keyAt(p), p[KeyLen:], nil
}

// ParseRecvPacket splits a v2 RecvPacket payload into source and packet.
func ParseRecvPacket(p []byte) (src key.NodePublic, pkt []byte, err error) {
	if len(p) < KeyLen {
		return src, nil, fmt.Errorf("%w: RecvPacket of %d bytes", ErrShortFrame, len(p))
	}
	return keyAt(p), p[KeyLen:], nil
}

// ParseForwardPacket splits a ForwardPacket payload.
func ParseForwardPacket(p []byte) (src, dst key.NodePublic, pkt []byte, err error) {
	if len(p) < 2*KeyLen {
		return src, dst, nil, fmt.Errorf("%w: ForwardPacket of %d bytes", ErrShortFrame, len(p))
	}
	if len(p)-2*KeyLen > MaxPacketSize {
		return src, dst, nil, fmt.Errorf("%w: ForwardPacket of %d bytes", ErrFrameTooLarge, len(p))
	}
	return keyAt(p), keyAt(p[KeyLen:]), p[2*KeyLen:], nil
}

// AppendPeerGone appends a PeerGone payload.
func AppendPeerGone(b []byte, peer key.NodePublic, reason PeerGoneReason) []byte {
	return append(AppendKey(b, peer), byte(reason))
}

// ParsePeerGone parses a PeerGone payload; a missing reason byte (old
// servers) means PeerGoneDisconnected.
func ParsePeerGone(p []byte) (key.NodePublic, PeerGoneReason, error) {
	if len(p) < KeyLen {
		return key.NodePublic{}, 0, fmt.Errorf("%w: PeerGone of %d bytes", ErrShortFrame, len(p))
	}
	var r PeerGoneReason
	if len(p) > KeyLen {
		r = PeerGoneReason(p[KeyLen])
	}
	return keyAt(p), r, nil
}

// AppendPeerPresent appends the 51-byte PeerPresent payload. IPv4
// addresses are written v4-mapped into the 16-byte field.
func AppendPeerPresent(b []byte, m PeerPresent) []byte {
	b = AppendKey(b, m.Key)
	var a16 [16]byte
	if m.Addr.Addr().IsValid() {
		a16 = m.Addr.Addr().As16()
	}
	b = append(b, a16[:]...)
	b = binary.BigEndian.AppendUint16(b, m.Addr.Port())
	return append(b, byte(m.Flags))
}

// ParsePeerPresent accepts the 32-, 50- and ≥51-byte forms servers have sent.
func ParsePeerPresent(p []byte) (PeerPresent, error) {
	var m PeerPresent
	if len(p) < KeyLen {
		return m, fmt.Errorf("%w: PeerPresent of %d bytes", ErrShortFrame, len(p))
	}
	m.Key = keyAt(p)
	if len(p) >= KeyLen+18 {
		ip := netip.AddrFrom16([16]byte(p[KeyLen : KeyLen+16])).Unmap()
		m.Addr = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(p[KeyLen+16:]))
	}
	if len(p) >= PeerPresentLen {
		m.Flags = PeerPresentFlags(p[KeyLen+18])
	}
	return m, nil
}

// AppendRestarting appends a Restarting payload: reconnect-in and try-for
// durations in milliseconds (u32 each, clamped).
func AppendRestarting(b []byte, reconnectIn, tryFor time.Duration) []byte {
	ms := func(d time.Duration) uint32 { return uint32(min(max(d.Milliseconds(), 0), 1<<32-1)) }
	b = binary.BigEndian.AppendUint32(b, ms(reconnectIn))
	return binary.BigEndian.AppendUint32(b, ms(tryFor))
}

// ParseRestarting parses a Restarting payload; extra bytes are ignored.
func ParseRestarting(p []byte) (reconnectIn, tryFor time.Duration, err error) {
	if len(p) < RestartingLen {
		return 0, 0, fmt.Errorf("%w: Restarting of %d bytes", ErrShortFrame, len(p))
	}
	return time.Duration(binary.BigEndian.Uint32(p)) * time.Millisecond,
		time.Duration(binary.BigEndian.Uint32(p[4:])) * time.Millisecond, nil
}

// discoMagic starts every disco packet ("TS" + U+1F4AC in UTF-8).
const discoMagic = "TS💬"

// LooksLikeDisco reports whether a relayed packet is a disco message: at
// least magic ‖ sender disco key ‖ nonce long and starting with the magic.
// Servers use it to pick the disco queue and to decide when to answer with
// PeerGone(not here).
func LooksLikeDisco(pkt []byte) bool {
	return len(pkt) >= len(discoMagic)+KeyLen+NonceLen && string(pkt[:len(discoMagic)]) == discoMagic
}
