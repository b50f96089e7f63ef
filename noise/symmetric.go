package noise

import (
	"crypto/cipher"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"

	"weft.dev/weft/wire/key"
)

// protocolName is 33 bytes, longer than the hash, so the initial h is its
// BLAKE2s hash rather than the zero-padded name (Noise spec §5.2).
const protocolName = "Noise_IK_25519_ChaChaPoly_BLAKE2s"

// prologue binds the protocol version into the handshake hash; the version
// itself travels in the (unauthenticated) initiation header.
func prologue(version uint16) []byte {
	return strconv.AppendUint([]byte("Tailscale Control Protocol v"), uint64(version), 10)
}

// symmetricState is the Noise SymmetricState: the running handshake hash h and
// chaining key ck. Each key derived by mixDH is used exactly once, with the
// all-zero nonce, so no CipherState counter is kept during the handshake.
type symmetricState struct {
	h  [32]byte
	ck [32]byte
}

// newSymmetricState initialises the state for an IK handshake with the given
// protocol version and responder static key (the IK pre-message).
func newSymmetricState(version uint16, responderStatic [32]byte) *symmetricState {
	s := &symmetricState{h: blake2s.Sum256([]byte(protocolName))}
	s.ck = s.h
	s.mixHash(prologue(version))
	s.mixHash(responderStatic[:])
	return s
}

func (s *symmetricState) mixHash(data []byte) {
	h := newBlake2s()
	h.Write(s.h[:])
	h.Write(data)
	h.Sum(s.h[:0])
}

// mixDH mixes X25519(priv, pub) into the chaining key and returns the AEAD
// keyed with the derived key. It fails on a low-order public key.
func (s *symmetricState) mixDH(priv, pub [32]byte) (cipher.AEAD, error) {
	shared, err := key.DH(priv, pub)
	if err != nil {
		return nil, err
	}
	var k [32]byte
	s.ck, k = hkdf2(s.ck[:], shared[:])
	return newAEAD(k)
}

// encryptAndHash appends the encryption of plaintext to dst and mixes the
// ciphertext into h.
func (s *symmetricState) encryptAndHash(aead cipher.AEAD, dst, plaintext []byte) []byte {
	var nonce [chacha20poly1305.NonceSize]byte
	out := aead.Seal(dst, nonce[:], plaintext, s.h[:])
	s.mixHash(out[len(dst):])
	return out
}

// decryptAndHash opens ciphertext and mixes it into h.
func (s *symmetricState) decryptAndHash(aead cipher.AEAD, ciphertext []byte) ([]byte, error) {
	var nonce [chacha20poly1305.NonceSize]byte
	plain, err := aead.Open(nil, nonce[:], ciphertext, s.h[:])
	if err != nil {
		return nil, err
	}
	s.mixHash(ciphertext)
	return plain, nil
}

// split derives the two transport keys: initiator→responder, then
// responder→initiator.
func (s *symmetricState) split() (c2s, s2c [32]byte) {
	return hkdf2(s.ck[:], nil)
}

// hkdf2 is the Noise HKDF with two outputs over HMAC-BLAKE2s (equal to
// RFC 5869 with salt = chainingKey and empty info).
func hkdf2(chainingKey, ikm []byte) (out1, out2 [32]byte) {
	prk := hmacBlake2s(chainingKey, ikm)
	copy(out1[:], hmacBlake2s(prk, []byte{1}))
	copy(out2[:], hmacBlake2s(prk, append(out1[:], 2)))
	return out1, out2
}

func hmacBlake2s(k, data []byte) []byte {
	m := hmac.New(newBlake2s, k)
	m.Write(data)
	return m.Sum(nil)
}

func newBlake2s() hash.Hash {
	h, err := blake2s.New256(nil)
	if err != nil {
		panic("noise: blake2s.New256: " + err.Error()) // only fails for keys > 32 bytes
	}
	return h
}

func newAEAD(k [32]byte) (cipher.AEAD, error) {
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		return nil, fmt.Errorf("noise: chacha20poly1305: %w", err)
	}
	return aead, nil
}

// newEphemeral returns a fresh Curve25519 key pair for one handshake.
func newEphemeral(rnd io.Reader) (priv, pub [32]byte, err error) {
	if _, err := io.ReadFull(rnd, priv[:]); err != nil {
		return priv, pub, fmt.Errorf("noise: ephemeral key: %w", err)
	}
	priv[0] &= 248
	priv[31] = (priv[31] & 127) | 64
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return priv, pub, fmt.Errorf("noise: ephemeral key: %w", err)
	}
	copy(pub[:], p)
	return priv, pub, nil
}

// cipherState is one direction of the transport. Unlike stock Noise, the
// counter goes into the nonce BIG-endian (controlbase upstream); a
// little-endian peer agrees on record 0 only.
type cipherState struct {
	aead cipher.AEAD
	n    uint64
}

// nextNonce returns the nonce for the next record and advances the counter.
// 2^64-1 is reserved (Noise spec §5.1), so the connection ends before it.
func (c *cipherState) nextNonce() ([chacha20poly1305.NonceSize]byte, error) {
	var nonce [chacha20poly1305.NonceSize]byte
	if c.n == math.MaxUint64 {
		return nonce, errCipherExhausted
	}
	binary.BigEndian.PutUint64(nonce[4:], c.n)
	c.n++
	return nonce, nil
}
