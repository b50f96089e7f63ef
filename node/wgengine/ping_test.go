package wgengine

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"weft.dev/weft/node/engine"
)

// Two engines in userspace mode ping each other with TSMP (answered by the
// other engine) and ICMP (answered by the other node's gVisor stack), in
// both directions; then, with one engine gone, a ping fails at its
// deadline and leaves nothing pending. The results name no path, as
// upstream's TSMP and ICMP results.
func TestEnginePingTSMPAndICMP(t *testing.T) {
	l := newLab(t)
	a := l.newNode(t, "198.18.1.1", "100.64.0.1")
	b := l.newNode(t, "198.18.1.2", "100.64.0.2")
	l.connect(t, a, b)

	for _, typ := range []engine.PingType{engine.PingTSMP, engine.PingICMP} {
		for _, dir := range []struct{ from, to *testNode }{{a, b}, {b, a}} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			res, err := dir.from.e.Ping(ctx, dir.to.ip, typ)
			cancel()
			if err != nil {
				t.Fatalf("%s ping %v -> %v: %v (%+v)", typ, dir.from.ip, dir.to.ip, err, res)
			}
			// The lab names nodes "<ip>.test."; the result has the
			// first label, as upstream's.
			want := engine.PingResult{IP: dir.to.ip, NodeName: "100", Latency: res.Latency}
			if res != want || res.Latency <= 0 {
				t.Errorf("%s ping %v -> %v = %+v, want %+v with a latency", typ, dir.from.ip, dir.to.ip, res, want)
			}
			t.Logf("%s ping %v -> %v: %v", typ, dir.from.ip, dir.to.ip, res.Latency)
			if n := dir.from.e.pings.pending(); n != 0 {
				t.Errorf("%d pings pending after the reply", n)
			}
		}
	}

	// An address that no peer has fails at once.
	if _, err := a.e.Ping(context.Background(), netip.MustParseAddr("fd7a:115c:a1e0::2"), engine.PingTSMP); err == nil {
		t.Error("ping of an IPv6 address that no peer has succeeded")
	}

	b.e.Close()
	for _, typ := range []engine.PingType{engine.PingTSMP, engine.PingICMP} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		res, err := a.e.Ping(ctx, b.ip, typ)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || res.Err == "" {
			t.Errorf("%s ping of a closed engine: %v (%+v), want a deadline error", typ, err, res)
		}
		if n := a.e.pings.pending(); n != 0 {
			t.Errorf("%d pings pending after the timeout", n)
		}
	}
}

func TestSelfAddrFor(t *testing.T) {
	addrs := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/24"), // a route, not an address
		netip.MustParsePrefix("100.64.0.1/32"),
		netip.MustParsePrefix("fd7a:115c:a1e0::1/128"),
	}
	tests := []struct {
		dst, want string
		addrs     []netip.Prefix
	}{
		{"100.64.0.2", "100.64.0.1", addrs},
		{"fd7a:115c:a1e0::2", "fd7a:115c:a1e0::1", addrs},
		{"fd7a:115c:a1e0::2", "", addrs[:2]},
		{"100.64.0.2", "", nil},
	}
	for _, tt := range tests {
		got, err := selfAddrFor(tt.addrs, netip.MustParseAddr(tt.dst))
		if tt.want == "" {
			if err == nil {
				t.Errorf("selfAddrFor(%v, %s) = %v, want an error", tt.addrs, tt.dst, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("selfAddrFor(%v, %s) = %v, %v; want %s", tt.addrs, tt.dst, got, err, tt.want)
		}
	}
}
