package magicsock

import (
	"net/netip"
	"testing"
	"time"

	"weft.dev/weft/internal/clock"
	"weft.dev/weft/wire/key"
)

// TestLiveness walks one peer's direct path through weft's liveness rules
// on fake time: a quiet trusted path is probed, stays trusted (and sends
// via DERP too) while the probe is within its grace, loses its trust when
// the probe goes unanswered, keeps best for re-pings, and is trusted again
// by a Pong.
func TestLiveness(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_000_000, 0))
	mn := NewMemNetwork()
	c, err := New(Options{Net: mn.Host(netip.MustParseAddr("198.18.1.1")), Clock: clk, DisableSTUN: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peerAddr := netip.MustParseAddrPort("198.18.1.2:41641")
	pk := key.NewNode().Public()

	c.mu.Lock()
	ep := newEndpoint(c, pk)
	ep.discoKey = key.NewDisco().Public()
	ep.homeRegion = 900
	ep.candidates[peerAddr] = &candidate{fromNetmap: true}
	ep.best = addrQuality{addr: peerAddr, latency: time.Millisecond}
	ep.trustUntil = clk.Now().Add(trustUDPAddrDuration)
	c.peers[pk] = ep
	p, _ := ep.addrForSendLocked(clk.Now()) // starts the heartbeat
	c.mu.Unlock()
	ep.noteHeard(clk.Now())
	if want := (path{udp: peerAddr}); p != want {
		t.Fatalf("trusted send path = %+v, want %+v", p, want)
	}

	state := func() (path, bool, time.Time) {
		c.mu.Lock()
		defer c.mu.Unlock()
		now := clk.Now()
		trusted := ep.trustedLocked(now)
		p, _ := ep.addrForSendLocked(now)
		return p, trusted, ep.probeAt
	}

	clk.Advance(livenessTick) // quiet for a second: probe
	p, trusted, probeAt := state()
	if !trusted || probeAt.IsZero() {
		t.Fatalf("after 1 s of silence: trusted %v, probe at %v; want trusted with a probe out", trusted, probeAt)
	}
	if want := (path{udp: peerAddr, region: 900}); p != want {
		t.Errorf("while probing: send path %+v, want %+v (DERP too)", p, want)
	}

	clk.Advance(minProbeGrace) // unanswered: trust ends, best stays
	p, trusted, _ = state()
	if trusted {
		t.Fatal("path still trusted after an unanswered probe")
	}
	if want := (path{udp: peerAddr, region: 900}); p != want {
		t.Errorf("untrusted: send path %+v, want %+v", p, want)
	}
	c.mu.Lock()
	var pingTo netip.AddrPort
	for _, sp := range c.sentPings {
		if sp.to.udp == peerAddr && sp.at.Equal(clk.Now()) {
			pingTo = sp.to.udp
		}
	}
	c.mu.Unlock()
	if pingTo != peerAddr {
		t.Error("sending over an untrusted best path did not re-ping it")
	}

	// Pongs time out (5 s) without clearing best, as upstream.
	clk.Advance(6 * time.Second)
	c.mu.Lock()
	best := ep.best.addr
	c.mu.Unlock()
	if best != peerAddr {
		t.Errorf("best after ping timeouts = %v, want %v kept", best, peerAddr)
	}
}
