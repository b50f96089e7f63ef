package ipam

import (
	"net/netip"
	"strings"
	"testing"
)

func TestSequentialAndUnique(t *testing.T) {
	a, err := New(DefaultPrefix4, DefaultPrefix6)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[netip.Addr]bool{}
	for i := 0; i < 1000; i++ {
		v4, v6, err := a.Next()
		if err != nil {
			t.Fatal(err)
		}
		if seen[v4] || seen[v6] {
			t.Fatalf("duplicate %s %s", v4, v6)
		}
		seen[v4], seen[v6] = true, true
		if i == 0 && (v4.String() != "100.64.0.1" || v6.String() != "fd7a:115c:a1e0::1") {
			t.Fatalf("first = %s %s", v4, v6)
		}
	}
}

func TestExhaustionAndReserved(t *testing.T) {
	a, err := New(netip.MustParsePrefix("10.9.0.0/29"), netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		v4, v6, err := a.Next()
		if err != nil {
			if !strings.Contains(err.Error(), "exhausted") {
				t.Fatalf("err = %v", err)
			}
			break
		}
		if v6.IsValid() {
			t.Fatalf("v6 allocated from a disabled family: %s", v6)
		}
		got = append(got, v4.String())
	}
	want := "10.9.0.1 10.9.0.2 10.9.0.3 10.9.0.4 10.9.0.5 10.9.0.6"
	if strings.Join(got, " ") != want {
		t.Fatalf("got %v want %s", got, want)
	}
	a.Release(netip.MustParseAddr("10.9.0.3"))
	v4, _, err := a.Next()
	if err != nil || v4.String() != "10.9.0.3" {
		t.Fatalf("after release: %v %v", v4, err)
	}
}

func TestReserve(t *testing.T) {
	a, _ := New(DefaultPrefix4, DefaultPrefix6)
	for _, tc := range []struct {
		ip, wantErr string
	}{
		{"100.64.0.5", ""},
		{"100.64.0.5", "already in use"},
		{"100.100.100.100", "reserved"},
		{"100.115.92.7", "reserved"},
		{"10.0.0.1", "outside"},
		{"fd7a:115c:a1e0::53", "reserved"},
	} {
		err := a.Reserve(netip.MustParseAddr(tc.ip), false)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Reserve(%s) = %v, want %q", tc.ip, err, tc.wantErr)
		}
	}
	// Allocation skips the reserved one.
	for i := 0; i < 10; i++ {
		v4, _, _ := a.Next()
		if v4.String() == "100.64.0.5" {
			t.Fatal("allocated a reserved address")
		}
	}
	if _, err := New(netip.MustParsePrefix("fd00::/64"), netip.Prefix{}); err == nil {
		t.Fatal("v6 prefix accepted as v4")
	}
}
