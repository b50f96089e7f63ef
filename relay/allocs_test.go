package relay_test

import (
	"fmt"
	"runtime"
	"testing"

	"weft.dev/weft/relay"
	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/derp"
)

// TestForwardPathAllocs checks that relaying a packet (client Send, server
// read/route/queue/write, client Recv) does not allocate in steady state,
// written inline by the sender's reader or by the destination's writer.
func TestForwardPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			ts := newServer(t, relay.Options{})
			if !inline {
				relay.DisableInlineWrites(ts.Server)
			}
			forwardPathAllocs(t, ts)
			if got := ts.Stats().InlineWrites > 0; got != inline {
				t.Fatalf("inline writes happened: %v, want %v", got, inline)
			}
		})
	}
}

func forwardPathAllocs(t *testing.T, ts *testServer) {
	a, _ := dial(t, ts.url, derpclient.Options{})
	b, _ := dial(t, ts.url, derpclient.Options{})
	pkt := make([]byte, 1200)
	bk := b.PublicKey()
	round := func() {
		if err := a.Send(bk, pkt); err != nil {
			t.Fatal(err)
		}
		for {
			m, err := b.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if m.Type == derp.FrameRecvPacket {
				return
			}
		}
	}
	for range 1000 { // warm pools and route caches
		round()
	}
	const n = 5000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		round()
	}
	runtime.ReadMemStats(&after)
	per := float64(after.Mallocs-before.Mallocs) / n
	t.Logf("%.3f allocations per relayed packet", per)
	if per > 0.2 {
		t.Fatalf("%.3f allocations per relayed packet, want ~0", per)
	}
}
