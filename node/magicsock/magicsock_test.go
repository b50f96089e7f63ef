package magicsock

import (
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"weft.dev/weft/wire/disco"
	"weft.dev/weft/wire/key"
	"weft.dev/weft/wire/stun"
)

func TestClassify(t *testing.T) {
	sk := disco.Shared(key.NewDisco(), key.NewDisco().Public())
	discoPkt, _ := disco.Seal(nil, key.NewDisco().Public(), &sk, &disco.Ping{}, nil)
	stunResp := stun.AppendResponse(nil, stun.NewTxID(), netip.MustParseAddrPort("198.18.0.1:1"))
	wgInit := append([]byte{1, 0, 0, 0}, make([]byte, 144)...)
	geneve := []byte{0, 0, 0x7a, 0x11, 0, 0, 1, 0, 9, 9}
	tests := []struct {
		name string
		pkt  []byte
		want pktKind
	}{
		{"stun-response", stunResp, pktSTUN},
		{"stun-request", stun.AppendRequest(nil, stun.NewTxID()), pktSTUN},
		{"disco", discoPkt, pktDisco},
		{"disco-header-only", discoPkt[:38], pktDisco},
		{"wg-initiation", wgInit, pktWireGuard},
		{"wg-data", append([]byte{4, 0, 0, 0}, make([]byte, 28)...), pktWireGuard},
		{"geneve", geneve, pktGeneve},
		{"junk", []byte("hello world"), pktJunk},
		{"empty", nil, pktJunk},
	}
	for _, tt := range tests {
		if got := classify(tt.pkt); got != tt.want {
			t.Errorf("%s: classify = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBetterAddr(t *testing.T) {
	aq := func(s string, ms int) addrQuality {
		return addrQuality{addr: netip.MustParseAddrPort(s), latency: time.Duration(ms) * time.Millisecond}
	}
	tests := []struct {
		name string
		a, b addrQuality
		want bool
	}{
		{"anything beats none", aq("198.51.100.1:1", 50), addrQuality{}, true},
		{"none beats nothing", addrQuality{}, aq("198.51.100.1:1", 50), false},
		{"same addr", aq("198.51.100.1:1", 1), aq("198.51.100.1:1", 50), false},
		{"much faster", aq("198.51.100.1:1", 10), aq("198.51.100.2:1", 50), true},
		{"slower", aq("198.51.100.1:1", 50), aq("198.51.100.2:1", 10), false},
		{"lan beats slightly faster wan", aq("192.168.1.2:1", 11), aq("198.51.100.2:1", 10), true},
		{"v6 beats equal v4", aq("[2001:db8::1]:1", 10), aq("198.51.100.2:1", 10), true},
		{"hysteresis keeps incumbent", aq("198.51.100.1:1", 100), aq("198.51.100.2:1", 101), false},
	}
	for _, tt := range tests {
		if got := betterAddr(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: betterAddr = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestGarbage sends random datagrams (some shaped like disco, STUN and
// WireGuard) at the port: nothing crashes, disco from unknown keys is
// dropped, and only WireGuard-shaped packets reach wireguard-go.
func TestGarbage(t *testing.T) {
	mn := NewMemNetwork()
	c, err := New(Options{Net: mn.Host(netip.MustParseAddr("198.18.1.1"))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fns, _, err := c.Bind().Open(0)
	if err != nil {
		t.Fatal(err)
	}
	attacker, _ := mn.Host(netip.MustParseAddr("198.18.9.9")).Listen(0)
	dst := netip.AddrPortFrom(netip.MustParseAddr("198.18.1.1"), c.LocalPort())

	const n = 3000
	got := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		bufs := make([][]byte, conn.IdealBatchSize)
		for i := range bufs {
			bufs[i] = make([]byte, 2048)
		}
		sizes := make([]int, len(bufs))
		eps := make([]conn.Endpoint, len(bufs))
		for {
			k, err := fns[0](bufs, sizes, eps)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("receive: %v", err)
				}
				return
			}
			for i := range k {
				if sizes[i] == 0 {
					continue
				}
				got++
				if _, ok := eps[i].(*lazyEndpoint); !ok {
					t.Errorf("garbage got a peer endpoint %T", eps[i])
				}
			}
		}
	}()
	wgShaped := 0
	for i := range n {
		b := make([]byte, 1+i%200)
		rand.Read(b)
		switch i % 4 {
		case 0:
			b = append([]byte(disco.Magic), b...)
			b = append(b, make([]byte, 64)...)
		case 1:
			b = append(stun.AppendResponse(nil, stun.NewTxID(), dst), b...)
		case 2:
			b = append([]byte{4, 0, 0, 0}, b...)
			wgShaped++
		}
		attacker.WriteBatch([][]byte{b}, dst)
		if i%200 == 0 {
			time.Sleep(5 * time.Millisecond) // stay within the memnet queue
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Metrics()["recv_disco_bad_peer"] < n/4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	c.Bind().Close()
	<-done
	if m := c.Metrics(); m["recv_disco_bad_peer"] != n/4 {
		t.Errorf("disco from unknown keys dropped: %d, want %d (metrics %v)", m["recv_disco_bad_peer"], n/4, m)
	}
	if got > wgShaped {
		t.Errorf("%d packets passed to wireguard, at most %d were WireGuard-shaped", got, wgShaped)
	}
}
