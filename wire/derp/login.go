package derp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/nacl/box"

	"weft.dev/weft/wire/key"
)

// MeshKey is the pre-shared key of a regional mesh: 32 bytes, shown as 64
// lowercase hex digits (upstream types/key.DERPMesh). The zero value means
// "no mesh key".
type MeshKey struct{ k [32]byte }

// ErrInvalidMeshKey is returned for mesh keys that are not 64 hex digits.
var ErrInvalidMeshKey = errors.New("derp: mesh key must be a 64-digit hexadecimal number")

// ParseMeshKey parses 64 hex digits, ignoring surrounding whitespace (as in
// mesh key files written with a trailing newline).
func ParseMeshKey(s string) (MeshKey, error) {
	s = strings.TrimSpace(s)
	var m MeshKey
	if len(s) != 64 {
		return m, ErrInvalidMeshKey
	}
	if _, err := hex.Decode(m.k[:], []byte(s)); err != nil {
		return MeshKey{}, fmt.Errorf("%w: %v", ErrInvalidMeshKey, err)
	}
	return m, nil
}

// IsZero reports whether m is unset.
func (m MeshKey) IsZero() bool { return m.k == [32]byte{} }

// Equal compares in constant time.
func (m MeshKey) Equal(o MeshKey) bool { return subtle.ConstantTimeCompare(m.k[:], o.k[:]) == 1 }

// String returns the 64 lowercase hex digits.
func (m MeshKey) String() string { return hex.EncodeToString(m.k[:]) }

// MarshalText implements encoding.TextMarshaler.
func (m MeshKey) MarshalText() ([]byte, error) { return hex.AppendEncode(nil, m.k[:]), nil }

// UnmarshalText implements encoding.TextUnmarshaler. The empty string is the zero key.
func (m *MeshKey) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = MeshKey{}
		return nil
	}
	k, err := ParseMeshKey(string(b))
	if err != nil {
		return err
	}
	*m = k
	return nil
}

// ClientInfo is the JSON a client seals into its ClientInfo frame
// (upstream derp.ClientInfo; key spellings are part of the wire format).
type ClientInfo struct {
	// MeshKey grants mesh privileges when it equals the server's.
	MeshKey MeshKey `json:"meshKey,omitzero"`
	// Version is the DERP protocol version the client speaks.
	Version int `json:"version,omitempty"`
	// CanAckPings promises that the client answers Ping with Pong. Always
	// encoded, as upstream does.
	CanAckPings bool
	// IsProber marks monitoring clients.
	IsProber bool `json:",omitempty"`
	// AppName is opaque, for stats.
	AppName string `json:",omitempty"`
}

// ServerInfo is the JSON a server seals into its ServerInfo frame.
type ServerInfo struct {
	Version int `json:"version,omitempty"`
	// A non-zero token bucket makes official clients drop packets above the
	// rate on their side; servers that do not want that leave both zero.
	TokenBucketBytesPerSecond int `json:",omitempty"`
	TokenBucketBytesBurst     int `json:",omitempty"`
}

// seal returns nonce ‖ box(msg) from priv to pub.
func seal(r io.Reader, priv key.NodePrivate, pub key.NodePublic, msg []byte, out []byte) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	var nonce [NonceLen]byte
	if _, err := io.ReadFull(r, nonce[:]); err != nil {
		return nil, fmt.Errorf("derp: nonce: %w", err)
	}
	p, s := pub.Raw32(), priv.Raw32()
	out = append(out, nonce[:]...)
	return box.Seal(out, msg, &nonce, &p, &s), nil
}

// open opens nonce ‖ box(msg) sent from pub to priv.
func open(priv key.NodePrivate, pub key.NodePublic, sealed []byte) ([]byte, bool) {
	if len(sealed) < NonceLen+box.Overhead {
		return nil, false
	}
	nonce := [NonceLen]byte(sealed[:NonceLen])
	p, s := pub.Raw32(), priv.Raw32()
	return box.Open(nil, sealed[NonceLen:], &nonce, &p, &s)
}

// AppendServerKey appends a ServerKey payload: magic ‖ server public key.
func AppendServerKey(b []byte, server key.NodePublic) []byte {
	k := server.Raw32()
	return append(append(b, Magic...), k[:]...)
}

// ParseServerKey parses a ServerKey payload. Extra trailing bytes are
// ignored (reserved for future use), as official clients do.
func ParseServerKey(p []byte) (key.NodePublic, error) {
	if len(p) < len(Magic)+KeyLen {
		return key.NodePublic{}, fmt.Errorf("%w: ServerKey of %d bytes", ErrShortFrame, len(p))
	}
	if string(p[:len(Magic)]) != Magic {
		return key.NodePublic{}, errors.New("derp: ServerKey has wrong magic")
	}
	return key.NodePublicFromRaw32([32]byte(p[len(Magic):])), nil
}

// SealClientInfo builds a ClientInfo payload: client public key ‖ nonce ‖
// box(JSON) from the client's private key to the server's public key. rand
// nil means crypto/rand.
func SealClientInfo(rand io.Reader, client key.NodePrivate, server key.NodePublic, info ClientInfo) ([]byte, error) {
	msg, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	pub := client.Public().Raw32()
	return seal(rand, client, server, msg, pub[:])
}

// OpenClientInfo checks the size caps of a ClientInfo payload, opens it with
// the server's private key and decodes the JSON (unknown keys ignored).
func OpenClientInfo(server key.NodePrivate, p []byte) (key.NodePublic, ClientInfo, error) {
	var info ClientInfo
	if len(p) < MinClientInfoLen {
		return key.NodePublic{}, info, fmt.Errorf("%w: ClientInfo of %d bytes", ErrShortFrame, len(p))
	}
	if len(p) > MaxClientInfoLen {
		return key.NodePublic{}, info, fmt.Errorf("%w: ClientInfo of %d bytes", ErrFrameTooLarge, len(p))
	}
	client := key.NodePublicFromRaw32([32]byte(p[:KeyLen]))
	msg, ok := open(server, client, p[KeyLen:])
	if !ok {
		return client, info, fmt.Errorf("derp: cannot open ClientInfo from %s", client.ShortString())
	}
	if err := json.Unmarshal(msg, &info); err != nil {
		return client, info, fmt.Errorf("derp: ClientInfo from %s: %w", client.ShortString(), err)
	}
	return client, info, nil
}

// SealServerInfo builds a ServerInfo payload: nonce ‖ box(JSON) from the
// server's private key to the client. rand nil means crypto/rand.
func SealServerInfo(rand io.Reader, server key.NodePrivate, client key.NodePublic, info ServerInfo) ([]byte, error) {
	msg, err := json.Marshal(info)
	if err != nil {
		return nil, err
	}
	return seal(rand, server, client, msg, nil)
}

// OpenServerInfo opens a ServerInfo payload with the client's private key.
func OpenServerInfo(client key.NodePrivate, server key.NodePublic, p []byte) (ServerInfo, error) {
	var info ServerInfo
	if len(p) > NonceLen+box.Overhead+MaxInfoLen {
		return info, fmt.Errorf("%w: ServerInfo of %d bytes", ErrFrameTooLarge, len(p))
	}
	msg, ok := open(client, server, p)
	if !ok {
		return info, errors.New("derp: cannot open ServerInfo")
	}
	if err := json.Unmarshal(msg, &info); err != nil {
		return info, fmt.Errorf("derp: ServerInfo: %w", err)
	}
	return info, nil
}
