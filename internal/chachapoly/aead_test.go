package chachapoly

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/poly1305"
)

// TestPolyScalar checks the scalar Poly1305 against x/crypto's for random
// keys and messages, including all-ones ones that push every carry.
func TestPolyScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 300; n += 16 {
		for trial := 0; trial < 20; trial++ {
			var key [32]byte
			m := make([]byte, n)
			if trial%4 == 0 {
				for i := range key {
					key[i] = 0xff
				}
				for i := range m {
					m[i] = 0xff
				}
			} else {
				fill(r, key[:])
				fill(r, m)
			}
			var want, got [16]byte
			poly1305.Sum(&want, m, &key)
			var p poly
			p.init(&key)
			p.blocks(m)
			p.sum(&got)
			if got != want {
				t.Fatalf("n=%d trial %d: got %x want %x", n, trial, got, want)
			}
		}
	}
}

func fill(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// TestAEADMatchesXCrypto seals and opens every length from 0 to 3100 with
// and without additional data and compares with x/crypto byte for byte.
func TestAEADMatchesXCrypto(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	key := make([]byte, 32)
	for n := 0; n <= 3100; n++ {
		fill(r, key)
		ours, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := chacha20poly1305.New(key)
		nonce := make([]byte, 12)
		fill(r, nonce)
		pt := make([]byte, n)
		if n%7 == 0 {
			for i := range pt {
				pt[i] = 0xff
			}
		} else {
			fill(r, pt)
		}
		var ad []byte
		if n%3 == 1 {
			ad = make([]byte, n%37)
			fill(r, ad)
		}
		want := ref.Seal(nil, nonce, pt, ad)
		got := ours.Seal(nil, nonce, pt, ad)
		if !bytes.Equal(got, want) {
			t.Fatalf("n=%d: Seal differs from x/crypto", n)
		}
		// In place, as wireguard-go seals.
		buf := append([]byte(nil), pt...)
		buf = append(buf, make([]byte, 16)...)
		inPlace := ours.Seal(buf[:0], nonce, buf[:n], ad)
		if !bytes.Equal(inPlace, want) {
			t.Fatalf("n=%d: in-place Seal differs", n)
		}
		back, err := ours.Open(inPlace[:0], nonce, inPlace, ad)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("n=%d: in-place Open: err=%v equal=%v", n, err, bytes.Equal(back, pt))
		}
		// Any flipped bit, in the tag or the body, fails to open and
		// leaves the destination untouched.
		bad := append([]byte(nil), want...)
		bad[r.IntN(len(bad))] ^= 1 << r.IntN(8)
		dst := make([]byte, 0, n)
		if out, err := ours.Open(dst, nonce, bad, ad); err == nil {
			t.Fatalf("n=%d: tampered message opened: %x", n, out)
		}
		if _, err := ours.Open(nil, nonce, want[:len(want)-1], ad); err == nil && n > 0 {
			t.Fatalf("n=%d: truncated message opened", n)
		}
	}
}

func TestNewRejectsBadKey(t *testing.T) {
	if _, err := New(make([]byte, 31)); err == nil {
		t.Fatal("31-byte key accepted")
	}
}

// FuzzAEAD seals with key and nonce taken from kn (zero-padded) and
// compares with x/crypto; then opens, and opens a copy with one byte
// changed at a position picked from the input.
func FuzzAEAD(f *testing.F) {
	f.Add(make([]byte, 44), make([]byte, 1280), []byte(nil), uint16(0))
	f.Add(bytes.Repeat([]byte{0xff}, 44), bytes.Repeat([]byte{0xff}, 1439), []byte("ad"), uint16(1300))
	f.Add([]byte("k"), make([]byte, 511), []byte(nil), uint16(7))
	f.Add([]byte("key"), make([]byte, 2049), make([]byte, 17), uint16(2000))
	f.Fuzz(func(t *testing.T, kn, pt, ad []byte, flip uint16) {
		var key [32]byte
		var nonce [12]byte
		copy(key[:], kn)
		if len(kn) > 32 {
			copy(nonce[:], kn[32:])
		}
		ours, _ := New(key[:])
		ref, _ := chacha20poly1305.New(key[:])
		want := ref.Seal(nil, nonce[:], pt, ad)
		got := ours.Seal(nil, nonce[:], pt, ad)
		if !bytes.Equal(got, want) {
			t.Fatalf("Seal differs from x/crypto for %d bytes", len(pt))
		}
		back, err := ours.Open(nil, nonce[:], got, ad)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("Open of own Seal: %v", err)
		}
		got[int(flip)%len(got)] ^= 0x80
		if _, err := ours.Open(nil, nonce[:], got, ad); err == nil {
			t.Fatal("Open accepted a changed message")
		}
	})
}

func benchAEAD(b *testing.B, n int, open bool, mk func([]byte) any) {
	key := make([]byte, 32)
	a := mk(key).(interface {
		Seal(dst, nonce, pt, ad []byte) []byte
		Open(dst, nonce, ct, ad []byte) ([]byte, error)
	})
	nonce := make([]byte, 12)
	buf := make([]byte, n+16)
	ct := a.Seal(nil, nonce, buf[:n], nil)
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if open {
			if _, err := a.Open(buf[:0], nonce, ct, nil); err != nil {
				b.Fatal(err)
			}
		} else {
			a.Seal(buf[:0], nonce, buf[:n], nil)
		}
	}
}

func BenchmarkSeal(b *testing.B) {
	for _, n := range []int{64, 128, 256, 512, 1280, 1420, 8192} {
		b.Run("weft/"+itoa(n), func(b *testing.B) {
			benchAEAD(b, n, false, func(k []byte) any { a, _ := New(k); return a })
		})
		b.Run("xcrypto/"+itoa(n), func(b *testing.B) {
			benchAEAD(b, n, false, func(k []byte) any { a, _ := chacha20poly1305.New(k); return a })
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{64, 128, 256, 512, 1280, 1420, 8192} {
		b.Run("weft/"+itoa(n), func(b *testing.B) {
			benchAEAD(b, n, true, func(k []byte) any { a, _ := New(k); return a })
		})
		b.Run("xcrypto/"+itoa(n), func(b *testing.B) {
			benchAEAD(b, n, true, func(k []byte) any { a, _ := chacha20poly1305.New(k); return a })
		})
	}
}

func itoa(n int) string {
	return string([]byte{byte('0' + n/1000%10), byte('0' + n/100%10), byte('0' + n/10%10), byte('0' + n%10)})
}
