package daemon

import (
	"net/netip"
	"testing"

	"weft.dev/weft/node/netmap"
	"weft.dev/weft/wire/ctrl"
)

func TestPeerNameIP(t *testing.T) {
	pfx := netip.MustParsePrefix
	nm := &netmap.NetworkMap{Peers: []*ctrl.Node{
		{Name: "alpha.weft.test.", Addresses: []netip.Prefix{pfx("fd7a:115c:a1e0::1/128"), pfx("100.64.0.1/32")}},
		{Name: "beta.weft.test.", Addresses: []netip.Prefix{pfx("fd7a:115c:a1e0::2/128")}},
	}}
	tests := []struct {
		host string
		want string // "" = not resolved
	}{
		{"alpha", "100.64.0.1"},
		{"ALPHA.weft.test", "100.64.0.1"},
		{"alpha.weft.test.", "100.64.0.1"},
		{"beta", "fd7a:115c:a1e0::2"},
		{"gamma", ""},
		{"100.64.0.9", ""},
		{"", ""},
	}
	for _, tt := range tests {
		ip, ok := peerNameIP(nm, tt.host)
		got := ""
		if ok {
			got = ip.String()
		}
		if got != tt.want {
			t.Errorf("peerNameIP(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
	if _, ok := peerNameIP(nil, "alpha"); ok {
		t.Error("peerNameIP with no netmap resolved a name")
	}
}
