package stun

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"
)

var testTx = TxID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

func TestRequestGolden(t *testing.T) {
	got := AppendRequest(nil, testTx)
	// Layout of derp-disco.md §2.1; CRC computed independently by the test
	// of ParseBindingRequest below (round trip) and by the interop check.
	const wantPrefix = "00010014" + "2112a442" + "0102030405060708090a0b0c" +
		"80220008" + "7461696c6e6f6465" + "80280004"
	if len(got) != RequestLen || RequestLen != 40 {
		t.Fatalf("len = %d, want 40", len(got))
	}
	if h := hex.EncodeToString(got[:36]); h != wantPrefix {
		t.Fatalf("request prefix\n got %s\nwant %s", h, wantPrefix)
	}
	tx, err := ParseBindingRequest(got)
	if err != nil || tx != testTx {
		t.Fatalf("ParseBindingRequest = %x, %v", tx, err)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		wantLen int
		want    string // what ParseResponse returns (unmapped)
	}{
		{"192.0.2.1:41641", 32, "192.0.2.1:41641"},
		{"[2001:db8::1]:3478", 44, "[2001:db8::1]:3478"},
		{"[::ffff:198.18.0.7]:1", 44, "198.18.0.7:1"},
		{"127.0.0.1:65535", 32, "127.0.0.1:65535"},
	} {
		ap := netip.MustParseAddrPort(tc.addr)
		b := AppendResponse(nil, testTx, ap)
		if len(b) != tc.wantLen {
			t.Errorf("%s: len %d want %d", tc.addr, len(b), tc.wantLen)
		}
		tx, got, err := ParseResponse(b)
		if err != nil || tx != testTx || got.String() != tc.want {
			t.Errorf("%s: ParseResponse = %x %v %v, want %s", tc.addr, tx, got, err, tc.want)
		}
	}
	// Golden IPv4 response: port 41641^0x2112, address ^ cookie.
	b := AppendResponse(nil, testTx, netip.MustParseAddrPort("192.0.2.1:41641"))
	const want = "0101000c2112a442" + "0102030405060708090a0b0c" + "00200008" + "0001" + "83bb" + "e112a643"
	if h := hex.EncodeToString(b); h != want {
		t.Fatalf("ipv4 response\n got %s\nwant %s", h, want)
	}
}

func TestParseBindingRequestRejects(t *testing.T) {
	good := AppendRequest(nil, testTx)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"short", good[:19], ErrNotSTUN},
		{"cookie", mut(func(b []byte) []byte { b[4] = 0; return b }), ErrNotSTUN},
		{"topbits", mut(func(b []byte) []byte { b[0] = 0x40; return b }), ErrNotSTUN},
		{"response type", mut(func(b []byte) []byte { b[1] = 2; return b }), ErrNotBindingRequest},
		{"software", mut(func(b []byte) []byte { b[24] = 'X'; return b }), ErrWrongSoftware},
		{"fingerprint", mut(func(b []byte) []byte { b[39] ^= 1; return b }), ErrWrongFingerprint},
		{"no fingerprint", good[:32], ErrNoFingerprint},
		{"truncated attr", good[:34], ErrMalformedAttrs},
	} {
		_, err := ParseBindingRequest(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestParseResponseFallbacks(t *testing.T) {
	// MAPPED-ADDRESS only, plus an unknown attribute and trailing garbage.
	b := []byte{0x01, 0x01, 0x00, 0x14, 0x21, 0x12, 0xa4, 0x42}
	b = append(b, testTx[:]...)
	b = append(b, 0x80, 0x99, 0x00, 0x04, 1, 2, 3, 4) // unknown
	b = append(b, 0x00, 0x01, 0x00, 0x08, 0, 1, 0x12, 0x34, 10, 0, 0, 1)
	b = append(b, 0xff, 0xff) // beyond declared length
	_, ap, err := ParseResponse(b)
	if err != nil || ap != netip.MustParseAddrPort("10.0.0.1:4660") {
		t.Fatalf("ParseResponse = %v, %v", ap, err)
	}
	if _, _, err := ParseResponse(b[:HeaderLen+4]); !errors.Is(err, ErrMalformedAttrs) {
		t.Fatalf("short attrs err = %v", err)
	}
}

func TestServerPathAllocs(t *testing.T) {
	req := AppendRequest(nil, testTx)
	buf := make([]byte, 0, 64)
	ap := netip.MustParseAddrPort("[2001:db8::1]:3478")
	n := testing.AllocsPerRun(100, func() {
		tx, err := ParseBindingRequest(req)
		if err != nil {
			panic(err)
		}
		buf = AppendResponse(buf[:0], tx, ap)
	})
	if n != 0 {
		t.Fatalf("server path allocates %v times per request", n)
	}
}

func FuzzParseBindingRequest(f *testing.F) {
	f.Add(AppendRequest(nil, testTx))
	f.Add(AppendResponse(nil, testTx, netip.MustParseAddrPort("192.0.2.1:1")))
	f.Add([]byte{0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x28, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := ParseBindingRequest(b)
		if err != nil {
			return
		}
		// Anything accepted must be answerable and the answer parseable.
		resp := AppendResponse(nil, tx, netip.MustParseAddrPort("198.18.0.1:7"))
		gotTx, ap, err := ParseResponse(resp)
		if err != nil || gotTx != tx || ap.Port() != 7 {
			t.Fatalf("answer does not parse: %v %v", ap, err)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add(AppendResponse(nil, testTx, netip.MustParseAddrPort("192.0.2.1:41641")))
	f.Add(AppendResponse(nil, testTx, netip.MustParseAddrPort("[2001:db8::1]:3478")))
	f.Add(AppendRequest(nil, testTx))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, ap, err := ParseResponse(b)
		if err == nil && !ap.IsValid() {
			t.Fatal("nil error with invalid address")
		}
	})
}
