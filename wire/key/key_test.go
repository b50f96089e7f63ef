package key

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNodeRoundTrip(t *testing.T) {
	priv := NewNode()
	pub := priv.Public()
	b, err := json.Marshal(pub)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), `"nodekey:`) || len(b) != 2+8+64 {
		t.Fatalf("marshal = %s", b)
	}
	var got NodePublic
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got != pub {
		t.Fatalf("round trip: got %v want %v", got, pub)
	}
	pb, _ := priv.MarshalText()
	var priv2 NodePrivate
	if err := priv2.UnmarshalText(pb); err != nil || priv2 != priv {
		t.Fatalf("private round trip: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, wantErr string }{
		{"mkey:" + strings.Repeat("0", 64), "missing prefix"},
		{"nodekey:" + strings.Repeat("0", 63), "want 64 hex digits"},
		{"nodekey:" + strings.Repeat("g", 64), "invalid byte"},
	} {
		_, err := ParseNodePublic(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ParseNodePublic(%q) err = %v, want %q", tc.in, err, tc.wantErr)
		}
	}
	up := "nodekey:" + strings.Repeat("AB", 32)
	k, err := ParseNodePublic(up)
	if err != nil || k.String() != strings.ToLower(up) {
		t.Fatalf("upper-case parse: %v %v", k, err)
	}
	z, err := ParseNodePublic("")
	if err != nil || !z.IsZero() {
		t.Fatalf("empty parse: %v %v", z, err)
	}
}

func TestDH(t *testing.T) {
	a, b := NewMachine(), NewMachine()
	s1, err := DH(a.Raw32(), b.Public().Raw32())
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := DH(b.Raw32(), a.Public().Raw32())
	if s1 != s2 {
		t.Fatal("shared secrets differ")
	}
	if _, err := DH(a.Raw32(), [32]byte{}); err == nil {
		t.Fatal("zero point accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("nodekey:" + strings.Repeat("0", 64))
	f.Add("mkey:zz")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseNodePublic(s)
		if err == nil && s != "" {
			if strings.ToLower(s) != k.String() {
				t.Fatalf("round trip %q -> %q", s, k.String())
			}
		}
	})
}
