package key

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// Text prefixes of the key kinds (types/key in the Tailscale tree).
const (
	prefixMachine  = "mkey:"
	prefixNode     = "nodekey:"
	prefixDisco    = "discokey:"
	prefixChal     = "chalpub:"
	prefixPrivate  = "privkey:"
	prefixDiscoPrv = "discoprivkey:"
)

// parseHex32 parses prefix followed by exactly 64 hex digits.
func parseHex32(prefix string, text []byte) ([32]byte, error) {
	var out [32]byte
	s := string(text)
	if !strings.HasPrefix(s, prefix) {
		return out, fmt.Errorf("key %q: missing prefix %q", truncate(s), prefix)
	}
	h := s[len(prefix):]
	if len(h) != 64 {
		return out, fmt.Errorf("key %q: want 64 hex digits after %q, got %d", truncate(s), prefix, len(h))
	}
	if _, err := hex.Decode(out[:], []byte(h)); err != nil {
		return out, fmt.Errorf("key %q: %w", truncate(s), err)
	}
	return out, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func appendHex32(b []byte, prefix string, k [32]byte) []byte {
	b = append(b, prefix...)
	return hex.AppendEncode(b, k[:])
}

func shortString(k [32]byte) string {
	return "[" + base64.StdEncoding.EncodeToString(k[:])[:5] + "]"
}

// newPrivate returns a fresh clamped Curve25519 private key.
func newPrivate() [32]byte {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		panic("key: crypto/rand failed: " + err.Error())
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

func publicOf(priv [32]byte) [32]byte {
	var pub [32]byte
	curve25519.ScalarBaseMult(&pub, &priv)
	return pub
}

// ErrLowOrder is returned by shared-secret computations that yield all zeros.
var ErrLowOrder = errors.New("key: low-order point (all-zero shared secret)")

// DH computes X25519(priv, pub) and rejects the all-zero result.
func DH(priv, pub [32]byte) ([32]byte, error) {
	var out [32]byte
	s, err := curve25519.X25519(priv[:], pub[:])
	if err != nil {
		return out, ErrLowOrder
	}
	copy(out[:], s)
	if subtle.ConstantTimeCompare(out[:], make([]byte, 32)) == 1 {
		return out, ErrLowOrder
	}
	return out, nil
}
