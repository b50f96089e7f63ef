// Package chachapoly is ChaCha20-Poly1305 (RFC 8439) for WireGuard's data
// packets, faster than golang.org/x/crypto's on CPUs with AVX-512: the
// key stream comes 16 blocks at a time (one ChaCha state word of all 16
// blocks per 512-bit register, then a 16x16 transpose) and Poly1305 runs
// eight accumulators in radix 2^26 that multiply by r^8 per group of eight
// blocks, each lane multiplied by its own power of r in the last group.
// Tails shorter than a group go through a scalar radix-2^64 Poly1305.
//
// New returns x/crypto's AEAD where there is no AVX-512 (and for short
// messages, where setting up the vector paths costs more than it saves),
// so callers always get a correct cipher.AEAD. The assembly is generated
// by gen_amd64.go (go run gen_amd64.go).
//
// Measured on the 2-core AMD EPYC (Zen 5) rig, 1280-byte messages: see
// BenchmarkSeal/BenchmarkOpen; the README quotes the figures. Tried and
// left out: 8-block key stream in 256-bit registers for short tails (no
// faster than 16 blocks in 512-bit ones on this CPU); computing the powers
// of r in scalar code (the vector loads of its stores miss store
// forwarding: slower); two interleaved sets of Poly1305 lanes (the loop
// 30% faster, but the extra powers leave a 1280-byte packet ~2% faster
// for twice the assembly).
package chachapoly
