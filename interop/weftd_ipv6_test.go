package interop

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
)

// enableTunnelIPv6 turns IPv6 on for interfaces created from now on in
// node's namespace: the TUN device gets its fd7a:115c:a1e0:: address while
// the lab's veth (created before) stays IPv4-only, so the underlay is
// unchanged.
func enableTunnelIPv6(t *testing.T, node *nettest.Node) {
	t.Helper()
	if err := node.Sysctl("net.ipv6.conf.default.disable_ipv6", "0"); err != nil {
		t.Fatal(err)
	}
}

func (p peer) ipv6(t *testing.T) netip.Addr {
	t.Helper()
	return p.tailnetAddr(t, netip.Addr.Is6)
}

// TestWeftdIPv6Tunnel carries IPv6 inside the tunnel between weftd (kernel
// TUN) and official tailscaled v1.102.5 over an IPv4 underlay: ICMPv6
// both ways, `weft ping` of the peer's IPv6 address, and a 4 MiB HTTP
// transfer both ways over the tunnel's IPv6 addresses (the TSO split and
// GRO coalescing of TCP over IPv6 on weftd's side).
func TestWeftdIPv6Tunnel(t *testing.T) {
	lab := NewLab(t, LabConfig{Nodes: 1, NoDerper: true, NoDaemons: true})
	enableTunnelIPv6(t, lab.NodeNS[0])
	ts := lab.AddTailscaled(lab.NodeNS[0])
	ctl := startWeftControl(t, lab)
	key := ctl.userKey("erin")
	wnode := lab.NewNode("weft1", lab.Net)
	enableTunnelIPv6(t, wnode)
	cfg := weftdBins(t)
	cfg.CAFile = lab.TLS.CAFile
	w := StartWeftd(t, wnode, cfg)
	upBoth(t, ctl.URL, key, func() error { return ts.Up(ctl.URL, key) }, func() error { return w.Up(ctl.URL, key) })
	ts.WaitRunning(30 * time.Second)
	w.WaitRunning(30 * time.Second)
	a, b := weftPeer(w), tsPeer(ts)
	aIP, bIP := a.ipv6(t), b.ipv6(t)

	for _, dir := range []struct {
		from peer
		to   netip.Addr
	}{{a, bIP}, {b, aIP}} {
		nettest.WaitFor(t, 20*time.Second, func() error {
			out, err := dir.from.node.Exec("ping", "-6", "-c", "3", "-W", "2", dir.to.String())
			if err != nil {
				return fmt.Errorf("ICMPv6 ping %s -> %v: %v\n%s", dir.from.name, dir.to, err, out)
			}
			return nil
		})
	}
	out, err := a.cli("ping", "-c", "3", bIP.String())
	if err != nil || !strings.Contains(out, "pong from") {
		t.Fatalf("weft ping %v: %v\n%s", bIP, err, out)
	}
	serveHTTP(t, a.node, net.JoinHostPort(aIP.String(), "8000"))
	serveHTTP(t, b.node, net.JoinHostPort(bIP.String(), "8000"))
	for _, dir := range []struct {
		from peer
		to   netip.Addr
	}{{a, bIP}, {b, aIP}} {
		url := "http://" + net.JoinHostPort(dir.to.String(), "8000") + "/"
		d, err := httpFetch(dir.from.node, url)
		if err != nil {
			t.Fatalf("HTTP over IPv6 %s -> %v: %v", dir.from.name, dir.to, err)
		}
		t.Logf("HTTP over IPv6 %s <- %v: 4 MiB in %v", dir.from.name, dir.to, d.Round(time.Millisecond))
	}
}
