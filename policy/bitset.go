package policy

import "math/bits"

// bitset is a set of node slots, so membership unions over thousands of
// nodes cost N/64 word operations.
type bitset []uint64

func (b bitset) has(i int) bool {
	w := i / 64
	return w < len(b) && b[w]&(1<<(i%64)) != 0
}

func (b *bitset) set(i int) {
	w := i / 64
	if w >= len(*b) {
		*b = append(*b, make([]uint64, w+1-len(*b))...)
	}
	(*b)[w] |= 1 << (i % 64)
}

func (b bitset) clear(i int) {
	if w := i / 64; w < len(b) {
		b[w] &^= 1 << (i % 64)
	}
}

func (b *bitset) put(i int, v bool) {
	if v {
		b.set(i)
	} else {
		b.clear(i)
	}
}

func (b *bitset) or(o bitset) {
	if len(o) > len(*b) {
		*b = append(*b, make([]uint64, len(o)-len(*b))...)
	}
	for i, w := range o {
		(*b)[i] |= w
	}
}

// orAnd adds the members of both x and y.
func (b *bitset) orAnd(x, y bitset) {
	n := min(len(x), len(y))
	if n > len(*b) {
		*b = append(*b, make([]uint64, n-len(*b))...)
	}
	for i := range n {
		(*b)[i] |= x[i] & y[i]
	}
}

func (b bitset) xor(o bitset) bitset {
	out := make(bitset, max(len(b), len(o)))
	copy(out, b)
	for i, w := range o {
		out[i] ^= w
	}
	return out
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

func (b bitset) each(f func(i int)) {
	for wi, w := range b {
		for w != 0 {
			t := bits.TrailingZeros64(w)
			f(wi*64 + t)
			w &^= 1 << t
		}
	}
}
