package chachapoly

import (
	"encoding/binary"
	"math/bits"
)

// poly is a Poly1305 state in radix 2^64: the accumulator h0 + h1<<64 +
// h2<<128 (h2 stays below 8 between blocks), the clamped key half r and
// the final addend s.
type poly struct {
	h0, h1, h2 uint64
	r0, r1     uint64
	s0, s1     uint64
}

const (
	rMask0 = 0x0FFFFFFC0FFFFFFF
	rMask1 = 0x0FFFFFFC0FFFFFFC
)

func (p *poly) init(key *[32]byte) {
	*p = poly{
		r0: binary.LittleEndian.Uint64(key[0:]) & rMask0,
		r1: binary.LittleEndian.Uint64(key[8:]) & rMask1,
		s0: binary.LittleEndian.Uint64(key[16:]),
		s1: binary.LittleEndian.Uint64(key[24:]),
	}
}

// blocks absorbs len(m)/16 full blocks.
func (p *poly) blocks(m []byte) {
	h0, h1, h2 := p.h0, p.h1, p.h2
	r0, r1 := p.r0, p.r1
	for len(m) >= 16 {
		var c uint64
		h0, c = bits.Add64(h0, binary.LittleEndian.Uint64(m[0:]), 0)
		h1, c = bits.Add64(h1, binary.LittleEndian.Uint64(m[8:]), c)
		h2 += c + 1
		h0, h1, h2 = mulReduce(h0, h1, h2, r0, r1)
		m = m[16:]
	}
	p.h0, p.h1, p.h2 = h0, h1, h2
}

// mulReduce returns h*r reduced modulo 2^130-5 to three limbs with the top
// one below 8. r's clamping keeps every partial sum inside its word.
func mulReduce(h0, h1, h2, r0, r1 uint64) (uint64, uint64, uint64) {
	// h*r = t0 + t1<<64 + t2<<128 + t3<<192.
	hi00, t0 := bits.Mul64(h0, r0)
	hi10, lo10 := bits.Mul64(h1, r0)
	hi01, lo01 := bits.Mul64(h0, r1)
	hi11, lo11 := bits.Mul64(h1, r1)
	t1, c := bits.Add64(hi00, lo10, 0)
	t2, _ := bits.Add64(hi10, h2*r0, c)
	t1, c = bits.Add64(t1, lo01, 0)
	t2, _ = bits.Add64(t2, hi01, c)
	t2, c = bits.Add64(t2, lo11, 0)
	t3, _ := bits.Add64(hi11, h2*r1, c)

	// Everything from bit 130 up is worth 5 times itself at bit 0:
	// add cc = (t2 &^ 3) + t3<<64 (four times it) and cc>>2 (once).
	h0, h1, h2 = t0, t1, t2&3
	cc0, cc1 := t2&^3, t3
	h0, c = bits.Add64(h0, cc0, 0)
	h1, c = bits.Add64(h1, cc1, c)
	h2 += c
	cc0 = cc0>>2 | cc1<<62
	cc1 >>= 2
	h0, c = bits.Add64(h0, cc0, 0)
	h1, c = bits.Add64(h1, cc1, c)
	h2 += c
	return h0, h1, h2
}

// padded absorbs m as blocks, the last one zero-padded to 16 bytes (the
// AEAD construction pads, it does not use the short-block 1 marker).
func (p *poly) padded(m []byte) {
	n := len(m) &^ 15
	p.blocks(m[:n])
	if n < len(m) {
		var b [16]byte
		copy(b[:], m[n:])
		p.blocks(b[:])
	}
}

// lengths absorbs the AEAD's final block of the two lengths.
func (p *poly) lengths(ad, ct int) {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[0:], uint64(ad))
	binary.LittleEndian.PutUint64(b[8:], uint64(ct))
	p.blocks(b[:])
}

// sum writes the tag: (h mod 2^130-5) + s, modulo 2^128.
func (p *poly) sum(out *[16]byte) {
	h0, h1, h2 := p.h0, p.h1, p.h2
	// g = h + 5 - 2^130; if that does not borrow, h >= p and g is h mod p.
	g0, c := bits.Add64(h0, 5, 0)
	g1, c := bits.Add64(h1, 0, c)
	g2 := h2 + c
	// h < 2(2^130-5) after mulReduce, so g2 < 8 and bit 2 says h >= p.
	mask := -((g2 >> 2) & 1)
	h0 = h0&^mask | g0&mask
	h1 = h1&^mask | g1&mask
	h0, c = bits.Add64(h0, p.s0, 0)
	h1, _ = bits.Add64(h1, p.s1, c)
	binary.LittleEndian.PutUint64(out[0:], h0)
	binary.LittleEndian.PutUint64(out[8:], h1)
}
