package chachapoly

import (
	"crypto/cipher"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	// KeySize, NonceSize and Overhead are those of ChaCha20-Poly1305.
	KeySize   = 32
	NonceSize = 12
	Overhead  = 16
)

var errOpen = errors.New("chacha20poly1305: message authentication failed")

// New returns a ChaCha20-Poly1305 AEAD for a 32-byte key: this package's
// vector implementation where the CPU has AVX-512, else x/crypto's.
func New(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("chachapoly: key is %d bytes, want %d", len(key), KeySize)
	}
	fallback, err := chacha20poly1305.New(key)
	if err != nil {
		return nil, err
	}
	if !haveVector() {
		return fallback, nil
	}
	return newVector(key, fallback), nil
}

// sliceForAppend extends in by n bytes, reusing its capacity when it can,
// and returns the whole slice and the new tail.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return head, tail
}

// Implementation names what New returns on this machine, for logs.
func Implementation() string {
	if haveVector() {
		return "weft AVX-512 (x/crypto below 512 bytes)"
	}
	return "x/crypto (no AVX-512)"
}
