//go:build amd64 && !purego

package chachapoly

import "testing"

func BenchmarkMAC(b *testing.B) {
	for _, n := range []int{128, 256, 1280} {
		b.Run(itoa(n), func(b *testing.B) {
			var key [32]byte
			key[0] = 9
			m := make([]byte, n)
			var tag [16]byte
			b.SetBytes(int64(n))
			for i := 0; i < b.N; i++ {
				mac(&tag, &key, nil, m)
			}
		})
	}
}

func BenchmarkPolyScalar1280(b *testing.B) {
	var key [32]byte
	m := make([]byte, 1280)
	b.SetBytes(1280)
	for i := 0; i < b.N; i++ {
		var p poly
		p.init(&key)
		p.blocks(m)
	}
}

func BenchmarkPolyBlocks8(b *testing.B) {
	for _, groups := range []int{1, 2, 10} {
		b.Run(itoa(groups), func(b *testing.B) {
			m := make([]byte, 128*groups)
			var pw powers
			pw.r = toLimbs(0x0FFFFFFC0FFFFFFF, 0x0FFFFFFC0FFFFFFC, 0)
			var h limbs
			for i := 0; i < b.N; i++ {
				polyBlocks8(&h, &pw, &m[0], groups)
			}
		})
	}
}
