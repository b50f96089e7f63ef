package tsmp

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
)

// FuzzParse feeds arbitrary packets to ParseIP, Parse and ParseEcho. None
// may panic, and whatever parses as a message re-marshals to a packet that
// parses to the same message; a parsed echo re-marshals with a checksum
// that verifies.
func FuzzParse(f *testing.F) {
	for _, v := range vectors {
		b, _ := hex.DecodeString(v.hex)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x45})
	f.Add([]byte{0x60, 0, 0, 0, 0xff, 0xff, 99, 64})
	f.Add(append([]byte{0x46, 0, 0, 30, 0, 0, 0x40, 0, 64, 99, 0, 0, 100, 64, 0, 1, 100, 64, 0, 2, 1, 1, 0, 0}, 'o', 1, 2, 3, 4, 5, 6))
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		h, body, err := ParseIP(b)
		if err == nil && (len(body) > len(b) || !h.Src.IsValid() || h.Src.BitLen() != h.Dst.BitLen()) {
			t.Fatalf("ParseIP(%x) = %+v, %d-byte body", b, h, len(body))
		}
		if m, err := Parse(b); err == nil {
			again, err := m.AppendMarshal(nil)
			if err != nil {
				t.Fatalf("re-marshal of %+v: %v", m, err)
			}
			m2, err := Parse(again)
			if err != nil || !reflect.DeepEqual(m, m2) {
				t.Fatalf("round trip of %x: %+v, then %+v, %v", b, m, m2, err)
			}
		}
		if e, err := ParseEcho(b); err == nil {
			again, err := e.AppendMarshal(nil)
			if err != nil {
				t.Fatalf("re-marshal of %+v: %v", e, err)
			}
			checksumOK(t, again)
			e2, err := ParseEcho(again)
			if err != nil || !reflect.DeepEqual(e, e2) {
				t.Fatalf("round trip of %x: %+v, then %+v, %v", b, e, e2, err)
			}
		}
		if !bytes.Equal(b, orig) {
			t.Fatal("a parser modified its input")
		}
	})
}
