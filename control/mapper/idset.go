package mapper

import "math/bits"

// idSet is a set of node IDs as a bitmap. The store hands out IDs densely
// and never reuses them, so a session's set of 5,000 peers costs ~640
// bytes where a map would cost hundreds of kilobytes.
type idSet []uint64

func (s idSet) has(id int64) bool {
	w := id / 64
	return id >= 0 && w < int64(len(s)) && s[w]&(1<<(id%64)) != 0
}

func (s *idSet) add(id int64) {
	if id < 0 {
		return
	}
	w := int(id / 64)
	if w >= len(*s) {
		*s = append(*s, make([]uint64, w+1-len(*s))...)
	}
	(*s)[w] |= 1 << (id % 64)
}

func (s idSet) del(id int64) {
	if w := id / 64; id >= 0 && w < int64(len(s)) {
		s[w] &^= 1 << (id % 64)
	}
}

// eachNotIn calls f, in ascending order, for every ID in s that is not in o.
func (s idSet) eachNotIn(o idSet, f func(id int64)) {
	for wi, w := range s {
		if wi < len(o) {
			w &^= o[wi]
		}
		for w != 0 {
			t := bits.TrailingZeros64(w)
			f(int64(wi*64 + t))
			w &^= 1 << t
		}
	}
}

// eachIn calls f, in ascending order, for every ID in both s and o, looking
// only at o's non-zero words.
func (s idSet) eachIn(o idSet, f func(id int64)) {
	for wi, w := range o {
		if w == 0 || wi >= len(s) {
			continue
		}
		w &= s[wi]
		for w != 0 {
			t := bits.TrailingZeros64(w)
			f(int64(wi*64 + t))
			w &^= 1 << t
		}
	}
}
