//go:build amd64 && !purego

package chachapoly

// powers is polyBlocks8's scratch: r in radix 2^26 (set by the caller)
// and the lane powers for the last group with 5 times their upper limbs
// (written by the assembly). The assembly reads it by offset: keep the
// layout.
type powers struct {
	r  [5]uint64
	lr [5][8]uint64
	ls [4][8]uint64
}

//go:noescape
func polyBlocks8(h *limbs, pw *powers, msg *byte, n int)

const mask26 = 1<<26 - 1

type limbs [5]uint64

// toLimbs splits h0 + h1<<64 + h2<<128 into radix 2^26 (top limb may
// exceed 26 bits by h2's few bits).
func toLimbs(h0, h1, h2 uint64) limbs {
	return limbs{
		h0 & mask26,
		h0 >> 26 & mask26,
		(h0>>52 | h1<<12) & mask26,
		h1 >> 14 & mask26,
		h1>>40 | h2<<24,
	}
}

// carry brings every limb below 2^26 but the second, which may go one
// carry above; the top limb's overflow wraps round times 5.
func (a *limbs) carry() {
	for i := 0; i < 4; i++ {
		a[i+1] += a[i] >> 26
		a[i] &= mask26
	}
	c := a[4] >> 26
	a[4] &= mask26
	a[0] += c * 5
	a[1] += a[0] >> 26
	a[0] &= mask26
}

// join carries a fully and returns it in radix 2^64.
func (a *limbs) join() (h0, h1, h2 uint64) {
	a.carry()
	for i := 1; i < 4; i++ {
		a[i+1] += a[i] >> 26
		a[i] &= mask26
	}
	// Limbs 0-3 now hold 26 bits each: the shifts below cut no bits but
	// the ones that belong to the next word.
	h0 = a[0] | a[1]<<26 | a[2]<<52
	h1 = a[2]>>12 | a[3]<<14 | a[4]<<40
	h2 = a[4] >> 24
	return h0, h1, h2
}

// vecBlocks absorbs m (a multiple of 128 bytes, at least 128) into p.
func (p *poly) vecBlocks(m []byte, pw *powers) {
	pw.r = toLimbs(p.r0, p.r1, 0)
	h := toLimbs(p.h0, p.h1, p.h2)
	polyBlocks8(&h, pw, &m[0], len(m)/128)
	p.h0, p.h1, p.h2 = h.join()
}
