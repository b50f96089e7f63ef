//go:build amd64 && !purego

package chachapoly

// keystream16 writes 16 blocks of ChaCha20 key stream for state (whose
// word 12, the block counter, is the first block's).
//
//go:noescape
func keystream16(state *[16]uint32, out *[1024]byte)

// xor16 sets dst = src ^ 16 blocks of key stream; dst may be src.
//
//go:noescape
func xor16(state *[16]uint32, dst, src *[1024]byte)

// keystream32 writes 32 blocks of key stream (two interleaved 16-block
// states: more independent work per instruction than keystream16).
//
//go:noescape
func keystream32(state *[16]uint32, out *[2048]byte)

// xor32 sets dst = src ^ 32 blocks of key stream; dst may be src.
//
//go:noescape
func xor32(state *[16]uint32, dst, src *[2048]byte)
