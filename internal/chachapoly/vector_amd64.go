//go:build amd64 && !purego

package chachapoly

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/cpu"
)

// vecMin is the shortest plaintext the vector path takes; shorter ones go
// to x/crypto (BenchmarkSeal's sizes show where the two cross).
const vecMin = 512

// maxPlain is the most ChaCha20's 32-bit block counter can encrypt after
// the Poly1305 key block.
const maxPlain = (1<<32-1)*64 - 64

func haveVector() bool { return cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL }

type vecAEAD struct {
	key      [8]uint32
	fallback cipher.AEAD
}

func newVector(key []byte, fallback cipher.AEAD) cipher.AEAD {
	a := &vecAEAD{fallback: fallback}
	for i := range a.key {
		a.key[i] = binary.LittleEndian.Uint32(key[4*i:])
	}
	return a
}

func (a *vecAEAD) NonceSize() int { return NonceSize }
func (a *vecAEAD) Overhead() int  { return Overhead }

func (a *vecAEAD) state(nonce []byte) [16]uint32 {
	if len(nonce) != NonceSize {
		panic("chacha20poly1305: bad nonce length passed to Seal/Open")
	}
	return [16]uint32{
		0x61707865, 0x3320646e, 0x79622d32, 0x6b206574,
		a.key[0], a.key[1], a.key[2], a.key[3],
		a.key[4], a.key[5], a.key[6], a.key[7],
		0,
		binary.LittleEndian.Uint32(nonce[0:]),
		binary.LittleEndian.Uint32(nonce[4:]),
		binary.LittleEndian.Uint32(nonce[8:]),
	}
}

func (a *vecAEAD) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(plaintext) < vecMin {
		return a.fallback.Seal(dst, nonce, plaintext, additionalData)
	}
	if uint64(len(plaintext)) > maxPlain {
		panic("chacha20poly1305: plaintext too large")
	}
	st := a.state(nonce)
	ret, out := sliceForAppend(dst, len(plaintext)+Overhead)
	if inexactOverlap(out, plaintext) {
		panic("chacha20poly1305: invalid buffer overlap")
	}
	var ks [2048]byte
	firstBlocks(&st, &ks, len(plaintext))
	var pkey [32]byte
	copy(pkey[:], ks[:32])
	ct := out[:len(plaintext)]
	xorStream(&st, &ks, ct, plaintext)

	var tag [16]byte
	mac(&tag, &pkey, additionalData, ct)
	copy(out[len(plaintext):], tag[:])
	return ret
}

func (a *vecAEAD) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(ciphertext) < Overhead {
		return nil, errOpen
	}
	n := len(ciphertext) - Overhead
	if n < vecMin {
		return a.fallback.Open(dst, nonce, ciphertext, additionalData)
	}
	if uint64(n) > maxPlain {
		panic("chacha20poly1305: ciphertext too large")
	}
	st := a.state(nonce)
	var ks [2048]byte
	firstBlocks(&st, &ks, n)
	var pkey [32]byte
	copy(pkey[:], ks[:32])
	ct := ciphertext[:n]
	var tag [16]byte
	mac(&tag, &pkey, additionalData, ct)
	if subtle.ConstantTimeCompare(tag[:], ciphertext[n:]) != 1 {
		return nil, errOpen
	}
	ret, out := sliceForAppend(dst, n)
	if inexactOverlap(out, ct) {
		panic("chacha20poly1305: invalid buffer overlap")
	}
	xorStream(&st, &ks, out, ct)
	return ret, nil
}

// firstBlocks fills ks with the key stream from block 0: 16 blocks when
// they cover an n-byte message (and the Poly1305 key), else 32.
func firstBlocks(st *[16]uint32, ks *[2048]byte, n int) {
	if n <= 1024-64 {
		keystream16(st, (*[1024]byte)(ks[:1024]))
		return
	}
	keystream32(st, ks)
}

// xorStream sets dst = src ^ the key stream from block 1 on; ks holds
// what firstBlocks put there for len(src) and st is the state for block 0. A 1280-byte
// packet needs 21 blocks: one keystream32 call covers it.
func xorStream(st *[16]uint32, ks *[2048]byte, dst, src []byte) {
	m := min(len(src), 2048-64)
	subtle.XORBytes(dst[:m], src[:m], ks[64:64+m])
	off := m
	for st[12] = 32; len(src)-off >= 2048; st[12] += 32 {
		xor32(st, (*[2048]byte)(dst[off:]), (*[2048]byte)(src[off:]))
		off += 2048
	}
	switch rest := len(src) - off; {
	case rest > 1024:
		keystream32(st, ks)
		subtle.XORBytes(dst[off:len(src)], src[off:], ks[:])
	case rest > 0:
		keystream16(st, (*[1024]byte)(ks[:1024]))
		subtle.XORBytes(dst[off:len(src)], src[off:], ks[:rest])
	}
}

// mac computes the AEAD's Poly1305 tag over ad and ct.
func mac(tag *[16]byte, key *[32]byte, ad, ct []byte) {
	var p poly
	p.init(key)
	p.padded(ad)
	ctLen := len(ct)
	if n := len(ct) &^ 127; n > 0 {
		var pw powers
		p.vecBlocks(ct[:n], &pw)
		ct = ct[n:]
	}
	p.padded(ct)
	p.lengths(len(ad), ctLen)
	p.sum(tag)
}

// inexactOverlap reports whether x and y share memory other than starting
// at the same place (which in-place Seal and Open allow).
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	x0, x1 := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&x[len(x)-1]))
	y0, y1 := uintptr(unsafe.Pointer(&y[0])), uintptr(unsafe.Pointer(&y[len(y)-1]))
	return x0 <= y1 && y0 <= x1
}
