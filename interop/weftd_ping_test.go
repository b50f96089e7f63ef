package interop

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
)

// TestWeftdTSMPAndICMPPing checks `ping --tsmp` and `ping --icmp` between
// weftd and official tailscaled v1.102.5 in both directions: weftd in TUN
// mode (weft1: injection wakes the kernel TUN read) and in userspace mode
// (weft2: the gVisor stack behind the injector's pump), tailscaled in TUN
// mode. A TSMP ping is answered by the other daemon itself, an ICMP ping
// by the other side's kernel (or weftd's gVisor stack); each CLI must
// print the pong the way `tailscale ping` does.
func TestWeftdTSMPAndICMPPing(t *testing.T) {
	lab := NewLab(t, LabConfig{Nodes: 1, NoDerper: true})
	ctl := startWeftControl(t, lab)
	key := ctl.userKey("pat")
	ts := lab.Nodes[0]
	w1 := startWeftdIn(t, lab, "weft1", lab.Net, WeftdConfig{})
	w2 := startWeftdIn(t, lab, "weft2", lab.Net, WeftdConfig{Tun: Userspace})
	upBoth(t, ctl.URL, key,
		func() error { return ts.Up(ctl.URL, key) },
		func() error { return w1.Up(ctl.URL, key) },
		func() error { return w2.Up(ctl.URL, key) })
	ts.WaitRunning(30 * time.Second)
	w1.WaitRunning(30 * time.Second)
	w2.WaitRunning(30 * time.Second)
	official := tsPeer(ts)

	for _, w := range []*Weftd{w1, w2} {
		weft := weftPeer(w)
		for _, typ := range []string{"TSMP", "ICMP"} {
			for _, dir := range []struct {
				from, to peer
			}{{weft, official}, {official, weft}} {
				toIP := dir.to.ipv4(t)
				// "pong from <name> (<ip>[, <peerapi port>]) via TSMP in 1ms"
				want := regexp.MustCompile(`(?m)^pong from ` + regexp.QuoteMeta(dir.to.name) + ` \(` +
					regexp.QuoteMeta(toIP.String()) + `(, \d+)?\) via ` + typ + ` in \S+$`)
				var line string
				nettest.WaitFor(t, 10*time.Second, func() error {
					out, err := dir.from.cli("ping", "--"+strings.ToLower(typ), "--c=2", "--timeout=2s", toIP.String())
					if line = want.FindString(out); line == "" {
						return fmt.Errorf("%s ping --%s %v: no pong (%v)\n%s", dir.from.name, strings.ToLower(typ), toIP, err, out)
					}
					return nil
				})
				t.Logf("%s -> %s %s: %s", dir.from.name, dir.to.name, typ, strings.TrimSpace(line))
			}
		}
	}
}
