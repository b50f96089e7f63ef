package tsmp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

var (
	v4a = netip.MustParseAddr("100.64.0.1")
	v4b = netip.MustParseAddr("100.64.0.2")
	v6a = netip.MustParseAddr("fd7a:115c:a1e0::1")
	v6b = netip.MustParseAddr("fd7a:115c:a1e0::2")
	d8  = [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// marshaler is what every message type here has.
type marshaler interface {
	AppendMarshal([]byte) ([]byte, error)
}

// The vectors were computed independently (Python struct and an RFC 1071
// checksum), not with this package.
var vectors = []struct {
	name string
	msg  marshaler
	hex  string
}{
	{"tsmp ping ipv4", Ping{IP: IPHeader{Proto: Proto, Src: v4a, Dst: v4b, ID: 0x1234}, Data: d8},
		"4500001d1234000040639fc76440000164400002700102030405060708"},
	{"tsmp pong ipv6", Pong{IP: IPHeader{Proto: Proto, Src: v6b, Dst: v6a, ID: 0xedcba}, Data: d8, PeerAPIPort: 8080},
		"600edcba000b6340fd7a115ca1e000000000000000000002fd7a115ca1e0000000000000000000016f01020304050607081f90"},
	{"icmp echo request", Echo{IP: IPHeader{Proto: ProtoICMP, Src: v4a, Dst: v4b, ID: 0x0102}, ID: 0xbeef, Seq: 7, Data: []byte("abcd")},
		"45000020010200004001b158644000016440000208007442beef000761626364"},
	{"icmpv6 echo reply, odd length", Echo{IP: IPHeader{Proto: ProtoICMPv6, Src: v6b, Dst: v6a, ID: 0x12345}, Reply: true, ID: 0xbeef, Seq: 7, Data: []byte("abcde")},
		"60012345000d3a40fd7a115ca1e000000000000000000002fd7a115ca1e00000000000000000000181003488beef00076162636465"},
}

func parseAny(b []byte) (marshaler, error) {
	if h, _, err := ParseIP(b); err == nil && h.Proto != Proto {
		return ParseEcho(b)
	}
	return Parse(b)
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		want := unhex(t, v.hex)
		got, err := v.msg.AppendMarshal([]byte("prefix"))
		if err != nil {
			t.Fatalf("%s: marshal: %v", v.name, err)
		}
		if !bytes.Equal(got[6:], want) || string(got[:6]) != "prefix" {
			t.Errorf("%s: marshal\n got %x\nwant prefix+%x", v.name, got, want)
		}
		back, err := parseAny(want)
		if err != nil {
			t.Fatalf("%s: parse: %v", v.name, err)
		}
		if !reflect.DeepEqual(back, v.msg) {
			t.Errorf("%s: parse\n got %+v\nwant %+v", v.name, back, v.msg)
		}
	}
}

func TestReplies(t *testing.T) {
	ping := Ping{IP: IPHeader{Proto: Proto, Src: v4a, Dst: v4b, ID: 0x1234}, Data: d8}
	want := Pong{IP: IPHeader{Proto: Proto, Src: v4b, Dst: v4a, ID: 0xedcb}, Data: d8, PeerAPIPort: 0}
	if got := ping.Pong(0); got != want {
		t.Errorf("ipv4 pong = %+v, want %+v", got, want)
	}
	ping6 := Ping{IP: IPHeader{Src: v6a, Dst: v6b, ID: 0x00012}, Data: d8}
	want6 := Pong{IP: IPHeader{Proto: Proto, Src: v6b, Dst: v6a, ID: 0xfffed}, Data: d8, PeerAPIPort: 41641}
	if got := ping6.Pong(41641); got != want6 {
		t.Errorf("ipv6 pong = %+v, want %+v", got, want6)
	}
	req := Echo{IP: IPHeader{Proto: ProtoICMPv6, Src: v6a, Dst: v6b, ID: 5}, ID: 1, Seq: 2, Data: []byte("x")}
	wantEcho := Echo{IP: IPHeader{Proto: ProtoICMPv6, Src: v6b, Dst: v6a, ID: 0xffffa}, Reply: true, ID: 1, Seq: 2, Data: []byte("x")}
	if got := req.Response(); !reflect.DeepEqual(got, wantEcho) {
		t.Errorf("echo response = %+v, want %+v", got, wantEcho)
	}
}

// A pong without the PeerAPI port (older senders) parses with port 0;
// bytes past the IP total length are ignored.
func TestParseLenient(t *testing.T) {
	b, err := Ping{IP: IPHeader{Src: v4a, Dst: v4b}, Data: d8}.AppendMarshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	b[20] = byte(TypePong)
	m, err := Parse(append(b, 0xff, 0xff, 0xff))
	if err != nil {
		t.Fatal(err)
	}
	want := Pong{IP: IPHeader{Proto: Proto, Src: v4a, Dst: v4b}, Data: d8}
	if m != want {
		t.Errorf("9-byte pong = %+v, want %+v", m, want)
	}
}

func TestParseErrors(t *testing.T) {
	ping4 := unhex(t, vectors[0].hex)
	echo4 := unhex(t, vectors[2].hex)
	mod := func(b []byte, f func([]byte)) []byte {
		c := bytes.Clone(b)
		f(c)
		return c
	}
	tests := []struct {
		name string
		pkt  []byte
		echo bool
		want error
	}{
		{"empty", nil, false, ErrNotIP},
		{"version 5", mod(ping4, func(b []byte) { b[0] = 0x55 }), false, ErrNotIP},
		{"short ipv4 header", ping4[:19], false, ErrNotIP},
		{"ihl below 5", mod(ping4, func(b []byte) { b[0] = 0x44 }), false, ErrNotIP},
		{"total length past end", ping4[:28], false, ErrNotIP},
		{"total length below ihl", mod(ping4, func(b []byte) { b[3] = 10 }), false, ErrNotIP},
		{"more fragments", mod(ping4, func(b []byte) { b[6] = 0x20 }), false, ErrNotIP},
		{"fragment offset", mod(ping4, func(b []byte) { b[7] = 1 }), false, ErrNotIP},
		{"short ipv6 header", unhex(t, vectors[1].hex)[:39], false, ErrNotIP},
		{"ipv6 payload length past end", mod(unhex(t, vectors[1].hex), func(b []byte) { b[5] = 12 }), false, ErrNotIP},
		{"udp", mod(ping4, func(b []byte) { b[9] = 17 }), false, ErrWrongProto},
		{"reject message", mod(ping4, func(b []byte) { b[20] = byte(TypeRejectedConn) }), false, ErrWrongProto},
		{"disco advertisement", mod(ping4, func(b []byte) { b[20] = byte(TypeDiscoAdvertisement) }), false, ErrWrongProto},
		{"short ping", mod(ping4[:28], func(b []byte) { b[3] = 28 }), false, ErrShort},
		{"no tsmp body", mod(ping4[:20], func(b []byte) { b[3] = 20 }), false, ErrShort},
		{"echo: tsmp", ping4, true, ErrWrongProto},
		{"echo: icmpv6 in ipv4", mod(echo4, func(b []byte) { b[9] = ProtoICMPv6 }), true, ErrWrongProto},
		{"echo: unreachable", mod(echo4, func(b []byte) { b[20] = 3 }), true, ErrWrongProto},
		{"echo: code 1", mod(echo4, func(b []byte) { b[21] = 1 }), true, ErrWrongProto},
		{"echo: short", mod(echo4[:27], func(b []byte) { b[3] = 27 }), true, ErrShort},
	}
	for _, tt := range tests {
		var err error
		if tt.echo {
			_, err = ParseEcho(tt.pkt)
		} else {
			_, err = Parse(tt.pkt)
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name string
		msg  marshaler
	}{
		{"mixed families", Ping{IP: IPHeader{Src: v4a, Dst: v6b}}},
		{"no addresses", Pong{}},
		{"ipv4 and ipv4-mapped", Echo{IP: IPHeader{Src: netip.MustParseAddr("::ffff:100.64.0.1"), Dst: v4b}}},
		{"too big", Echo{IP: IPHeader{Src: v4a, Dst: v4b}, Data: make([]byte, 65535-20-8+1)}},
	}
	for _, tt := range tests {
		if b, err := tt.msg.AppendMarshal(nil); err == nil {
			t.Errorf("%s: marshal = %x, want an error", tt.name, b)
		}
	}
	if _, err := (Echo{IP: IPHeader{Src: v4a, Dst: v4b}, Data: make([]byte, 65535-20-8)}).AppendMarshal(nil); err != nil {
		t.Errorf("largest echo: %v", err)
	}
}

// checksumOK verifies the IPv4 header checksum and the ICMP checksum of a
// built echo packet: summing with the checksum field in gives 0xffff.
func checksumOK(t *testing.T, pkt []byte) {
	t.Helper()
	h, body, err := ParseIP(pkt)
	if err != nil {
		t.Fatal(err)
	}
	var acc uint32
	if h.Src.Is4() {
		if c := fold(sum(pkt[:20], 0)); c != 0 {
			t.Errorf("IPv4 header checksum does not verify (residue %#x)", c)
		}
	} else {
		acc = pseudoHeaderSum(h, h.Proto, len(body))
	}
	if c := fold(sum(body, acc)); c != 0 {
		t.Errorf("ICMP checksum of %x does not verify (residue %#x)", pkt, c)
	}
}

func TestEchoChecksums(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 56, 1400} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(0xff - i)
		}
		for _, ip := range []IPHeader{{Src: v4a, Dst: v4b, ID: 0xffff}, {Src: v6a, Dst: v6b, ID: 0xfffff}} {
			for _, reply := range []bool{false, true} {
				b, err := Echo{IP: ip, Reply: reply, ID: 0xffff, Seq: 0xfffe, Data: data}.AppendMarshal(nil)
				if err != nil {
					t.Fatal(err)
				}
				checksumOK(t, b)
			}
		}
	}
}
