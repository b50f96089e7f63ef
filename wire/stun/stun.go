package stun

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
)

// Wire constants (RFC 5389 and net/stun/stun.go upstream).
const (
	// HeaderLen is the fixed STUN message header length.
	HeaderLen = 20
	// Software is the SOFTWARE attribute value tailscaled sends; official
	// derpers ignore requests without it. Eight bytes, so it needs no padding.
	Software = "tailnode"
	// RequestLen is the length of the request built by [AppendRequest].
	RequestLen = HeaderLen + 4 + len(Software) + 8

	attrMappedAddress       = 0x0001
	attrXorMappedAddress    = 0x0020
	attrXorMappedAddressAlt = 0x8020 // non-standard, accepted by Tailscale clients
	attrSoftware            = 0x8022
	attrFingerprint         = 0x8028

	typeBindingRequest = 0x0001
	typeBindingSuccess = 0x0101

	magicCookie      = 0x2112A442
	fingerprintXOR   = 0x5354554e
	lenFingerprintAt = 8 // attribute header + CRC-32
)

// TxID is a STUN transaction ID.
type TxID [12]byte

// NewTxID returns a random transaction ID from crypto/rand.
func NewTxID() TxID {
	var t TxID
	rand.Read(t[:]) // never fails since Go 1.24
	return t
}

// Errors returned by the parsers. Servers should drop such packets silently.
var (
	ErrNotSTUN            = errors.New("stun: not a STUN packet")
	ErrNotBindingRequest  = errors.New("stun: not a binding request")
	ErrNotSuccessResponse = errors.New("stun: not a binding success response")
	ErrMalformedAttrs     = errors.New("stun: malformed attributes")
	ErrWrongSoftware      = errors.New("stun: SOFTWARE is not \"tailnode\"")
	ErrNoFingerprint      = errors.New("stun: FINGERPRINT is not the last attribute")
	ErrWrongFingerprint   = errors.New("stun: FINGERPRINT does not match")
	ErrNoAddress          = errors.New("stun: response has no mapped address")
)

// Is reports whether b looks like a STUN message: at least a header, the top
// two bits zero and the magic cookie in place.
func Is(b []byte) bool {
	return len(b) >= HeaderLen && b[0]&0xc0 == 0 &&
		binary.BigEndian.Uint32(b[4:8]) == magicCookie
}

func fingerprint(b []byte) uint32 { return crc32.ChecksumIEEE(b) ^ fingerprintXOR }

// AppendRequest appends the 40-byte Binding Request that tailscaled sends:
// SOFTWARE "tailnode" followed by FINGERPRINT.
func AppendRequest(b []byte, tx TxID) []byte {
	start := len(b)
	b = binary.BigEndian.AppendUint16(b, typeBindingRequest)
	b = binary.BigEndian.AppendUint16(b, uint16(RequestLen-HeaderLen))
	b = binary.BigEndian.AppendUint32(b, magicCookie)
	b = append(b, tx[:]...)
	b = binary.BigEndian.AppendUint16(b, attrSoftware)
	b = binary.BigEndian.AppendUint16(b, uint16(len(Software)))
	b = append(b, Software...)
	fp := fingerprint(b[start:])
	b = binary.BigEndian.AppendUint16(b, attrFingerprint)
	b = binary.BigEndian.AppendUint16(b, 4)
	return binary.BigEndian.AppendUint32(b, fp)
}

// foreachAttr walks the attributes in b (the bytes after the header). It
// stops at the first malformed attribute.
func foreachAttr(b []byte, fn func(typ uint16, val []byte)) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return ErrMalformedAttrs
		}
		typ := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		padded := (n + 3) &^ 3
		b = b[4:]
		if padded > len(b) {
			return ErrMalformedAttrs
		}
		fn(typ, b[:n])
		b = b[padded:]
	}
	return nil
}

// ParseBindingRequest validates a Binding Request the way the official
// derper does (net/stun.ParseBindingRequest upstream): SOFTWARE must be
// "tailnode", FINGERPRINT must be last and must verify. It returns the
// transaction ID to echo. It does not allocate.
func ParseBindingRequest(b []byte) (TxID, error) {
	var tx TxID
	if !Is(b) {
		return tx, ErrNotSTUN
	}
	if binary.BigEndian.Uint16(b) != typeBindingRequest {
		return tx, ErrNotBindingRequest
	}
	copy(tx[:], b[8:HeaderLen])
	var softwareOK bool
	var last uint16
	var gotFP uint32
	var fpOK bool
	err := foreachAttr(b[HeaderLen:], func(typ uint16, val []byte) {
		last = typ
		if typ == attrSoftware && string(val) == Software {
			softwareOK = true
		}
		if typ == attrFingerprint && len(val) == 4 {
			gotFP, fpOK = binary.BigEndian.Uint32(val), true
		}
	})
	if err != nil {
		return TxID{}, err
	}
	if !softwareOK {
		return TxID{}, ErrWrongSoftware
	}
	if last != attrFingerprint || !fpOK || len(b) < HeaderLen+lenFingerprintAt {
		return TxID{}, ErrNoFingerprint
	}
	if fingerprint(b[:len(b)-lenFingerprintAt]) != gotFP {
		return TxID{}, ErrWrongFingerprint
	}
	return tx, nil
}

// AppendResponse appends a Binding Success response with one
// XOR-MAPPED-ADDRESS for addr (32 bytes for IPv4, 44 for IPv6). A v4-mapped
// IPv6 address is sent as IPv6, as the official derper does; clients unmap.
// An invalid addr appends nothing.
func AppendResponse(b []byte, tx TxID, addr netip.AddrPort) []byte {
	ip := addr.Addr()
	var fam byte
	switch {
	case ip.Is4():
		fam = 1
	case ip.Is6():
		fam = 2
	default:
		return b
	}
	alen := ip.BitLen() / 8
	b = binary.BigEndian.AppendUint16(b, typeBindingSuccess)
	b = binary.BigEndian.AppendUint16(b, uint16(8+alen))
	b = binary.BigEndian.AppendUint32(b, magicCookie)
	b = append(b, tx[:]...)
	b = binary.BigEndian.AppendUint16(b, attrXorMappedAddress)
	b = binary.BigEndian.AppendUint16(b, uint16(4+alen))
	b = append(b, 0, fam)
	b = binary.BigEndian.AppendUint16(b, addr.Port()^uint16(magicCookie>>16))
	mask := xorMask(tx)
	a16 := ip.As16()
	for i, o := range a16[16-alen:] {
		b = append(b, o^mask[i])
	}
	return b
}

// xorMask is the cookie followed by the transaction ID: the XOR key of
// XOR-MAPPED-ADDRESS.
func xorMask(tx TxID) [16]byte {
	var m [16]byte
	binary.BigEndian.PutUint32(m[:], magicCookie)
	copy(m[4:], tx[:])
	return m
}

// ParseResponse parses a Binding Success response. It accepts
// XOR-MAPPED-ADDRESS (0x0020 or 0x8020), falls back to MAPPED-ADDRESS,
// ignores other attributes and trailing bytes past the declared length, and
// unmaps v4-mapped addresses.
func ParseResponse(b []byte) (TxID, netip.AddrPort, error) {
	var tx TxID
	if !Is(b) {
		return tx, netip.AddrPort{}, ErrNotSTUN
	}
	copy(tx[:], b[8:HeaderLen])
	if binary.BigEndian.Uint16(b) != typeBindingSuccess {
		return tx, netip.AddrPort{}, ErrNotSuccessResponse
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	attrs := b[HeaderLen:]
	if n > len(attrs) {
		return tx, netip.AddrPort{}, ErrMalformedAttrs
	}
	attrs = attrs[:n]
	var xorAddr, plainAddr netip.AddrPort
	var bad bool
	err := foreachAttr(attrs, func(typ uint16, val []byte) {
		switch typ {
		case attrXorMappedAddress, attrXorMappedAddressAlt:
			ap, ok := parseAddr(val, tx, true)
			if !ok {
				bad = true
				return
			}
			xorAddr = ap
		case attrMappedAddress:
			ap, ok := parseAddr(val, tx, false)
			if !ok {
				bad = true
				return
			}
			plainAddr = ap
		}
	})
	if err != nil || bad {
		return tx, netip.AddrPort{}, ErrMalformedAttrs
	}
	if xorAddr.IsValid() {
		return tx, xorAddr, nil
	}
	if plainAddr.IsValid() {
		return tx, plainAddr, nil
	}
	return tx, netip.AddrPort{}, ErrNoAddress
}

func parseAddr(val []byte, tx TxID, xor bool) (netip.AddrPort, bool) {
	if len(val) < 4 {
		return netip.AddrPort{}, false
	}
	var alen int
	switch val[1] {
	case 1:
		alen = 4
	case 2:
		alen = 16
	default:
		return netip.AddrPort{}, false
	}
	if len(val) < 4+alen {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(val[2:])
	var raw [16]byte
	copy(raw[:], val[4:4+alen])
	if xor {
		port ^= uint16(magicCookie >> 16)
		mask := xorMask(tx)
		for i := range alen {
			raw[i] ^= mask[i]
		}
	}
	var ip netip.Addr
	if alen == 4 {
		ip = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		ip = netip.AddrFrom16(raw).Unmap()
	}
	return netip.AddrPortFrom(ip, port), true
}
