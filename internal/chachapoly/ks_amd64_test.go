//go:build amd64 && !purego

package chachapoly

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.org/x/crypto/chacha20"
)

func TestKeystream16(t *testing.T) {
	key := make([]byte, 32)
	nonce := make([]byte, 12)
	for i := range key {
		key[i] = byte(i*7 + 1)
	}
	for i := range nonce {
		nonce[i] = byte(i*3 + 5)
	}
	var st [16]uint32
	st[0], st[1], st[2], st[3] = 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574
	for i := 0; i < 8; i++ {
		st[4+i] = binary.LittleEndian.Uint32(key[4*i:])
	}
	st[12] = 7
	for i := 0; i < 3; i++ {
		st[13+i] = binary.LittleEndian.Uint32(nonce[4*i:])
	}
	var out [1024]byte
	keystream16(&st, &out)
	c, _ := chacha20.NewUnauthenticatedCipher(key, nonce)
	c.SetCounter(7)
	want := make([]byte, 1024)
	c.XORKeyStream(want, want)
	if !bytes.Equal(out[:], want) {
		for j := 0; j < 16; j++ {
			if !bytes.Equal(out[64*j:64*j+64], want[64*j:64*j+64]) {
				t.Errorf("block %d differs:\n got %x\nwant %x", j, out[64*j:64*j+64], want[64*j:64*j+64])
			}
		}
	}
}

func BenchmarkKeystream16(b *testing.B) {
	var st [16]uint32
	var out [1024]byte
	b.SetBytes(1024)
	for i := 0; i < b.N; i++ {
		keystream16(&st, &out)
	}
}

func TestKeystream32(t *testing.T) {
	var st [16]uint32
	for i := range st {
		st[i] = uint32(i)*0x9e3779b9 + 1
	}
	var a, b [1024]byte
	var both [2048]byte
	keystream16(&st, &a)
	st[12] += 16
	keystream16(&st, &b)
	st[12] -= 16
	keystream32(&st, &both)
	if !bytes.Equal(both[:1024], a[:]) || !bytes.Equal(both[1024:], b[:]) {
		t.Fatal("keystream32 differs from two keystream16 calls")
	}
	src := make([]byte, 2048)
	for i := range src {
		src[i] = byte(i * 13)
	}
	var dst [2048]byte
	xor32(&st, &dst, (*[2048]byte)(src))
	for i := range dst {
		if dst[i] != src[i]^both[i] {
			t.Fatalf("xor32 byte %d wrong", i)
		}
	}
}

func BenchmarkKeystream32(b *testing.B) {
	var st [16]uint32
	var out [2048]byte
	b.SetBytes(2048)
	for i := 0; i < b.N; i++ {
		keystream32(&st, &out)
	}
}

func TestVectorPathChosen(t *testing.T) {
	a, _ := New(make([]byte, 32))
	_, vec := a.(*vecAEAD)
	if vec != haveVector() {
		t.Fatalf("New returned %T with haveVector()=%v", a, haveVector())
	}
	t.Logf("vector path: %v", vec)
}
