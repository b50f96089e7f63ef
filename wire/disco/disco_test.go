package disco

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"weft.dev/weft/wire/key"
)

func TestInnerGolden(t *testing.T) {
	var tx TxID
	for i := range tx {
		tx[i] = byte(i + 1)
	}
	var nk [32]byte
	for i := range nk {
		nk[i] = 0xa0 + byte(i)
	}
	tests := []struct {
		name string
		m    Message
		hex  string
	}{
		{"ping", &Ping{TxID: tx, NodeKey: key.NodePublicFromRaw32(nk)},
			"0100" + "0102030405060708090a0b0c" + hex.EncodeToString(nk[:])},
		{"ping-padded", &Ping{TxID: tx, NodeKey: key.NodePublicFromRaw32(nk), Padding: 3},
			"0100" + "0102030405060708090a0b0c" + hex.EncodeToString(nk[:]) + "000000"},
		{"pong-v4", &Pong{TxID: tx, Src: netip.MustParseAddrPort("198.18.0.1:41641")},
			"0200" + "0102030405060708090a0b0c" + "00000000000000000000ffffc6120001" + "a2a9"},
		{"pong-v6", &Pong{TxID: tx, Src: netip.MustParseAddrPort("[2001:db8::1]:3")},
			"0200" + "0102030405060708090a0b0c" + "20010db8000000000000000000000001" + "0003"},
		{"cmm", &CallMeMaybe{MyNumber: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:1"), netip.MustParseAddrPort("[::1]:2")}},
			"0300" + "00000000000000000000ffffc6120001" + "0001" + "00000000000000000000000000000001" + "0002"},
		{"cmm-empty", &CallMeMaybe{MyNumber: []netip.AddrPort{}}, "0300"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := hex.EncodeToString(tt.m.AppendMarshal(nil))
			if got != tt.hex {
				t.Fatalf("marshal:\n got %s\nwant %s", got, tt.hex)
			}
			raw, _ := hex.DecodeString(tt.hex)
			back, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.m) {
				t.Fatalf("parse: got %+v, want %+v", back, tt.m)
			}
		})
	}
}

func TestParseQuirks(t *testing.T) {
	var tx TxID
	tests := []struct {
		name string
		in   []byte
		want Message
		err  error
	}{
		{"empty", nil, nil, ErrShort},
		{"ping-short", append([]byte{1, 0}, make([]byte, 11)...), nil, ErrShort},
		{"ping-no-key", append([]byte{1, 0}, make([]byte, 20)...), &Ping{TxID: tx, Padding: 8}, nil},
		{"pong-short", append([]byte{2, 0}, make([]byte, 29)...), nil, ErrShort},
		{"pong-extra", append([]byte{2, 0}, make([]byte, 40)...), &Pong{Src: netip.AddrPortFrom(netip.IPv6Unspecified(), 0)}, nil},
		{"cmm-ragged", append([]byte{3, 0}, make([]byte, 19)...), &CallMeMaybe{}, nil},
		{"cmm-v1", append([]byte{3, 1}, make([]byte, 18)...), &CallMeMaybe{}, nil},
		{"relay-type", []byte{4, 0, 1, 2}, nil, ErrUnknownType},
		{"future-type", []byte{0x7f, 0}, nil, ErrUnknownType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	a, b := key.NewDisco(), key.NewDisco()
	ab, ba := Shared(a, b.Public()), Shared(b, a.Public())
	if ab != ba {
		t.Fatal("shared keys differ")
	}
	ping := &Ping{TxID: NewTxID(), NodeKey: key.NewNode().Public()}
	pkt, err := Seal(nil, a.Public(), &ab, ping, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkt) != 124 {
		t.Errorf("unpadded ping is %d bytes on the wire, want 124 (derp-disco.md §3.3)", len(pkt))
	}
	if src, err := Sender(pkt); err != nil || src != a.Public() {
		t.Fatalf("Sender = %v, %v", src, err)
	}
	got, err := Open(pkt, &ba, make([]byte, 0, 128))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, ping) {
		t.Fatalf("got %+v, want %+v", got, ping)
	}
	pong, _ := Seal(nil, b.Public(), &ba, &Pong{Src: netip.MustParseAddrPort("198.18.0.1:1")}, nil)
	if len(pong) != 110 {
		t.Errorf("pong is %d bytes, want 110", len(pong))
	}
	bad := bytes.Clone(pkt)
	bad[len(bad)-1] ^= 1
	if _, err := Open(bad, &ba, nil); !errors.Is(err, ErrOpen) {
		t.Errorf("tampered: err = %v, want ErrOpen", err)
	}
	other := Shared(key.NewDisco(), a.Public())
	if _, err := Open(pkt, &other, nil); !errors.Is(err, ErrOpen) {
		t.Errorf("wrong key: err = %v, want ErrOpen", err)
	}
	if _, err := Open(pkt[:HeaderLen+5], &ba, nil); !errors.Is(err, ErrShort) {
		t.Errorf("short: err = %v", err)
	}
	if !strings.HasPrefix(string(pkt), Magic) || Looks([]byte("TS")) {
		t.Error("Looks/Magic mismatch")
	}
}
