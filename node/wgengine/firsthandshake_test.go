package wgengine

import (
	"testing"
	"time"

	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/netmap"
	"weft.dev/weft/wire/ctrl"
)

// TestHandshakeBeforePeerHasPath is the "both came up at once" case: a's
// netmap lists b before b has reported a home region or endpoints, so a's
// first handshake initiation has nowhere to go. It must leave as soon as
// the netmap gives b a path, not after wireguard-go's 5 s retry.
func TestHandshakeBeforePeerHasPath(t *testing.T) {
	l := newLab(t)
	a := l.newNode(t, "198.18.1.1", "100.64.0.1")
	b := l.newNode(t, "198.18.1.2", "100.64.0.2")
	b.echoServer(t, 7)
	l.connect(t, a, b) // b knows a fully; a is reconfigured below

	als, bls := a.local(), b.local()
	bare := b.self(nil) // just registered: no home region, no endpoints
	bare.DiscoKey = bls.DiscoKey
	nm := func(peer *ctrl.Node) *netmap.NetworkMap {
		return &netmap.NetworkMap{DERPMap: l.dm, NodeKey: a.priv.Public(), PacketFilter: ctrl.AllowAll(),
			SelfNode: a.self(&als), Peers: []*ctrl.Node{peer}}
	}
	if err := a.e.Reconfig(nm(bare), engine.Config{PrivateKey: a.priv}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); roundTrip(t, a, b, 7, 1000) }()
	// Let the dial's SYN trigger the (pathless) handshake initiation.
	waitFor(t, 5*time.Second, "a pathless send", func() bool { return a.e.Magicsock().Metrics()["send_no_path"] > 0 })
	start := time.Now()
	if err := a.e.Reconfig(nm(b.self(&bls)), engine.Config{PrivateKey: a.priv}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Fatalf("echo took %v after b got a path; the first handshake waited for the 5 s retry", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no echo within 20 s")
	}
}
