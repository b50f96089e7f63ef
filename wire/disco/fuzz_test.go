package disco

import (
	"net/netip"
	"reflect"
	"testing"

	"weft.dev/weft/wire/key"
)

// FuzzParse feeds arbitrary inner payloads to Parse and checks that whatever
// parses re-marshals to something that parses to the same value.
func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0})
	f.Add((&Ping{TxID: NewTxID(), NodeKey: key.NewNode().Public(), Padding: 5}).AppendMarshal(nil))
	f.Add((&Pong{TxID: NewTxID(), Src: netip.MustParseAddrPort("198.18.0.1:41641")}).AppendMarshal(nil))
	f.Add((&CallMeMaybe{MyNumber: []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:9")}}).AppendMarshal(nil))
	f.Add([]byte{3, 0, 1})
	f.Add([]byte{9, 0, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Parse(m.AppendMarshal(nil))
		if err != nil {
			t.Fatalf("re-parse of %+v: %v", m, err)
		}
		if cm, ok := m.(*CallMeMaybe); ok && len(cm.MyNumber) == 0 {
			return // empty list re-marshals with a non-nil slice
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip: %+v != %+v", m, again)
		}
	})
}

// FuzzOpen feeds arbitrary outer packets to Sender and Open.
func FuzzOpen(f *testing.F) {
	a, b := key.NewDisco(), key.NewDisco()
	sk := Shared(b, a.Public())
	skA := Shared(a, b.Public())
	good, _ := Seal(nil, a.Public(), &skA, &Ping{TxID: NewTxID()}, nil)
	f.Add(good)
	f.Add([]byte(Magic))
	f.Add(append([]byte(Magic), make([]byte, 70)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		Sender(b)
		Open(b, &sk, nil)
	})
}
