package interop

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// symmetricNAT replaces a nettest NAT router's masquerade with one that
// picks a fresh random source port for every new flow ("fully-random"), so
// the mapping a peer sees differs from the one STUN reports: an
// endpoint-dependent ("hard", symmetric-style) NAT.
const symmetricNAT = `
flush chain ip weft_nat postrouting
add rule ip weft_nat postrouting oifname "eth0" masquerade fully-random
`

// TestWeftdSymmetricNAT is issue 6 acceptance 4's second half: weftd behind
// a symmetric-style NAT, the official client behind an ordinary NAT that
// drops unsolicited inbound UDP. No direct path can exist (each side's
// pings reach the other NAT from a port it never sent to), so traffic
// stays on the embedded DERP relay, and works: ICMP, CLI pings and HTTP
// both ways.
func TestWeftdSymmetricNAT(t *testing.T) {
	_, _, w, a, b := natPair(t, "gina", symmetricNAT)
	aIP, bIP := a.ipv4(t), b.ipv4(t)
	icmpPing(t, a, bIP)
	icmpPing(t, b, aIP)

	// Keep traffic flowing for a few discovery rounds (5 s apart, each
	// with a CallMeMaybe) and check that no side ever claims a direct
	// path.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if err := a.node.Ping(bIP); err != nil {
			t.Errorf("ICMP %s -> %s over DERP: %v", a.name, b.name, err)
		}
		for _, dir := range []struct{ from, to peer }{{a, b}, {b, a}} {
			ps, err := dir.from.peerStatus(dir.to.name)
			if err != nil {
				t.Fatal(err)
			}
			if ps.CurAddr != "" {
				t.Fatalf("%s reports a direct path to %s via %s through a symmetric NAT", dir.from.name, dir.to.name, ps.CurAddr)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, dir := range []struct{ from, to peer }{{a, b}, {b, a}} {
		out, err := dir.from.cli("ping", "-c", "3", "--until-direct=false", dir.to.ipv4(t).String())
		if err != nil || !strings.Contains(out, "via DERP(weft)") {
			t.Errorf("%s ping %s: want via DERP(weft): %v\n%s", dir.from.name, dir.to.name, err, out)
		}
	}
	serveHTTP(t, a.node, net.JoinHostPort(aIP.String(), "8000"))
	serveHTTP(t, b.node, net.JoinHostPort(bIP.String(), "8000"))
	for _, dir := range []struct{ from, to peer }{{a, b}, {b, a}} {
		url := "http://" + net.JoinHostPort(dir.to.ipv4(t).String(), "8000") + "/"
		d, err := httpFetch(dir.from.node, url)
		if err != nil {
			t.Fatalf("HTTP %s -> %s over DERP: %v", dir.from.name, dir.to.name, err)
		}
		t.Logf("HTTP %s <- %s over DERP: 4 MiB in %v", dir.from.name, dir.to.name, d.Round(time.Millisecond))
	}
	if out, err := w.Weft("netcheck"); err != nil {
		t.Errorf("weft netcheck: %v\n%s", err, out)
	} else {
		t.Logf("weft netcheck behind the symmetric NAT:\n%s", out)
	}
}

// TestWeftdDerperFallback is issue 6 acceptance 3 with the official relay:
// weft-control hands out the lab's `derper -dev` (its embedded relay off),
// weftd reaches it over plain HTTP (TS_DEBUG_USE_DERP_HTTP=1, as the
// official client in the lab does), and with UDP between the peers blocked
// traffic continues through derper, then returns to direct.
func TestWeftdDerperFallback(t *testing.T) {
	lab := NewLab(t, LabConfig{Nodes: 1})
	ctl := startWeftControl(t, lab, "--disable-derp", "--derp-map", lab.DERP.MapFile)
	key := ctl.userKey("hank")
	ts := lab.Nodes[0]
	w := startWeftdIn(t, lab, "weft1", lab.Net, WeftdConfig{DERPOverHTTP: true})
	upBoth(t, ctl.URL, key, func() error { return ts.Up(ctl.URL, key) }, func() error { return w.Up(ctl.URL, key) })
	ts.WaitRunning(30 * time.Second)
	w.WaitRunning(30 * time.Second)
	a, b := weftPeer(w), tsPeer(ts)
	checkPair(t, a, b)
	code := lab.DERP.Map.Regions[DERPRegionID].RegionCode
	toDERP, toDirect := failoverVia(t, a, b, code)
	t.Logf("through derper: direct->DERP %v, back to direct %v", toDERP.Round(time.Millisecond), toDirect.Round(time.Millisecond))
	if out, err := w.Weft("netcheck"); err != nil || !strings.Contains(out, fmt.Sprint(DERPRegionID)) {
		t.Errorf("weft netcheck does not show derper's region %d: %v\n%s", DERPRegionID, err, out)
	}
}
