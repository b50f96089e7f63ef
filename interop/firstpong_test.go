package interop

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
)

// TestWeftdFirstPong brings two fresh weftd up at the same moment and
// measures the time from `up` to the first ICMP reply over the tunnel
// (issue 6: ≤ 1 s). Both sides starting together is the case where the
// first WireGuard handshake can meet a peer that does not know its
// sender yet.
func TestWeftdFirstPong(t *testing.T) {
	lab := NewLab(t, LabConfig{NoDerper: true})
	ctl := startWeftControl(t, lab)
	key := ctl.userKey("fp")
	const runs = 3
	for i := range runs {
		w1 := startWeftdIn(t, lab, fmt.Sprintf("fp%da", i), lab.Net, WeftdConfig{Args: []string{"--verbose=2"}})
		w2 := startWeftdIn(t, lab, fmt.Sprintf("fp%db", i), lab.Net, WeftdConfig{Args: []string{"--verbose=2"}})
		start := time.Now()
		upBoth(t, ctl.URL, key, func() error { return w1.Up(ctl.URL, key) }, func() error { return w2.Up(ctl.URL, key) })
		var bIP netip.Addr
		nettest.WaitFor(t, 10*time.Second, func() (err error) { bIP, err = w2.IPv4(); return err })
		nettest.WaitFor(t, 30*time.Second, func() error { return w1.Node.Ping(bIP) })
		d := time.Since(start)
		t.Logf("run %d: up -> first pong %v", i, d.Round(time.Millisecond))
		// A first handshake lost to a peer that did not know the sender
		// yet costs wireguard-go's 5 s retry: that is the failure to catch
		// (the goal is 1 s; 3 s leaves room for a loaded CI machine).
		if d > 3*time.Second {
			t.Errorf("run %d: up -> first pong took %v (goal 1 s); logs of %s:\n%s\nlogs of %s:\n%s", i, d, w1.Node.Name, w1.Proc.Tail(80), w2.Node.Name, w2.Proc.Tail(80))
		}
		w1.Proc.Stop()
		w2.Proc.Stop()
	}
}
