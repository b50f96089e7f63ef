package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
)

// peer is one node of a weftd scenario: weftd or the official tailscaled,
// driven through its own CLI.
type peer struct {
	name string
	node *nettest.Node
	// cli runs `weft ...` or `tailscale ...` against the daemon.
	cli    func(args ...string) (string, error)
	status func() (*Status, error)
}

func weftPeer(d *Weftd) peer {
	return peer{name: d.Node.Name, node: d.Node, cli: d.Weft, status: d.StatusJSON}
}

func tsPeer(d *Tailscaled) peer {
	return peer{name: d.Node.Name, node: d.Node, cli: d.Tailscale, status: d.StatusJSON}
}

func (p peer) ipv4(t *testing.T) netip.Addr {
	t.Helper()
	return p.tailnetAddr(t, netip.Addr.Is4)
}

// tailnetAddr returns p's first tailnet address of the family is tests.
func (p peer) tailnetAddr(t *testing.T, is func(netip.Addr) bool) netip.Addr {
	t.Helper()
	st, err := p.status()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range st.TailscaleIPs {
		if is(a) {
			return a
		}
	}
	t.Fatalf("%s has no such tailnet address: %+v", p.name, st.TailscaleIPs)
	return netip.Addr{}
}

// peerStatus returns p's view of the peer named host.
func (p peer) peerStatus(host string) (*PeerStatus, error) {
	st, err := p.status()
	if err != nil {
		return nil, err
	}
	ps := peerByHost(st, host)
	if ps == nil {
		return nil, fmt.Errorf("%s does not list %s", p.name, host)
	}
	return ps, nil
}

// weftdBins returns the WeftdConfig binaries for this test binary.
func weftdBins(t *testing.T) WeftdConfig {
	bins := weft.Bins(t)
	return WeftdConfig{Weftd: bins.Require(t, "weftd"), Weft: bins.Require(t, "weft")}
}

// startWeftdIn starts weftd in a new node on seg with the lab's CA.
func startWeftdIn(t *testing.T, lab *Lab, name string, seg *nettest.Segment, cfg WeftdConfig) *Weftd {
	t.Helper()
	base := weftdBins(t)
	cfg.Weftd, cfg.Weft = base.Weftd, base.Weft
	if cfg.CAFile == "" {
		cfg.CAFile = lab.TLS.CAFile
	}
	return StartWeftd(t, lab.NewNode(name, seg), cfg)
}

var viaDirect = regexp.MustCompile(`via (\d+\.\d+\.\d+\.\d+:\d+)`)

// pingDirect runs `<cli> ping` from a to b until it reports a direct path
// and returns the ip:port it went via.
func pingDirect(t *testing.T, a peer, bIP netip.Addr) string {
	t.Helper()
	var via string
	nettest.WaitFor(t, 45*time.Second, func() error {
		out, err := a.cli("ping", "-c", "10", bIP.String())
		if m := viaDirect.FindStringSubmatch(out); m != nil {
			via = m[1]
			return nil
		}
		return fmt.Errorf("%s ping %v: not direct yet: %v\n%s", a.name, bIP, err, out)
	})
	return via
}

// icmpPing pings dst through the kernel from inside a's node.
func icmpPing(t *testing.T, a peer, dst netip.Addr) {
	t.Helper()
	nettest.WaitFor(t, 20*time.Second, func() error {
		out, err := a.node.Exec("ping", "-c", "3", "-W", "2", dst.String())
		if err != nil {
			return fmt.Errorf("ICMP ping %s -> %v: %v\n%s", a.name, dst, err, out)
		}
		return nil
	})
}

// payload is what the scenario HTTP servers send: 4 MiB of a fixed pattern.
func payload() []byte {
	b := make([]byte, 4<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// serveHTTP serves payload() on addr inside node until the test ends.
func serveHTTP(t *testing.T, node *nettest.Node, addr string) {
	t.Helper()
	ln, err := node.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, node.Name, err)
	}
	body := payload()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// httpFetch GETs url from inside node and checks it received payload().
func httpFetch(node *nettest.Node, url string) (time.Duration, error) {
	c := node.HTTPClient()
	c.Timeout = 60 * time.Second
	start := time.Now()
	res, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, res.Body)
	if err != nil {
		return 0, fmt.Errorf("GET %s from %s: after %d bytes: %w", url, node.Name, n, err)
	}
	if want := sha256.Sum256(payload()); !bytes.Equal(h.Sum(nil), want[:]) {
		return 0, fmt.Errorf("GET %s from %s: %d bytes, not the payload", url, node.Name, n)
	}
	return time.Since(start), nil
}

// checkPair runs issue 6 acceptance 1–2 between a and b: ICMP over the
// tunnel, the CLI pings reporting a direct path, and an HTTP transfer over
// tunnel addresses in both directions.
func checkPair(t *testing.T, a, b peer) {
	t.Helper()
	aIP, bIP := a.ipv4(t), b.ipv4(t)
	icmpPing(t, a, bIP)
	icmpPing(t, b, aIP)
	t.Logf("%s -> %s: direct via %s", a.name, b.name, pingDirect(t, a, bIP))
	t.Logf("%s -> %s: direct via %s", b.name, a.name, pingDirect(t, b, aIP))
	serveHTTP(t, a.node, net.JoinHostPort(aIP.String(), "8000"))
	serveHTTP(t, b.node, net.JoinHostPort(bIP.String(), "8000"))
	for _, dir := range []struct{ from, to peer }{{a, b}, {b, a}} {
		url := "http://" + net.JoinHostPort(dir.to.ipv4(t).String(), "8000") + "/"
		d, err := httpFetch(dir.from.node, url)
		if err != nil {
			t.Fatalf("HTTP %s -> %s: %v", dir.from.name, dir.to.name, err)
		}
		t.Logf("HTTP %s <- %s: 4 MiB in %v (%.0f Mbit/s)", dir.from.name, dir.to.name, d.Round(time.Millisecond), 32/d.Seconds())
	}
	for _, dir := range []struct{ from, to peer }{{a, b}, {b, a}} {
		nettest.WaitFor(t, 10*time.Second, func() error {
			ps, err := dir.from.peerStatus(dir.to.name)
			if err != nil {
				return err
			}
			if ps.CurAddr == "" {
				return fmt.Errorf("%s's status of %s: no CurAddr (Relay %q)", dir.from.name, dir.to.name, ps.Relay)
			}
			return nil
		})
	}
}

// upBoth brings a and b up with key concurrently and waits for Running.
func upBoth(t *testing.T, url, key string, ups ...func() error) {
	t.Helper()
	errs := make(chan error, len(ups))
	for _, up := range ups {
		go func() { errs <- up() }()
	}
	for range ups {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestWeftdOfficialPeer is issue 5 acceptance 1 and issue 6 acceptance
// 1–3 against official tailscaled v1.102.5 (TUN mode on both sides),
// relayed by weft-control's embedded DERP over TLS.
func TestWeftdOfficialPeer(t *testing.T) {
	lab := NewLab(t, LabConfig{Nodes: 1, NoDerper: true})
	ctl := startWeftControl(t, lab)
	key := ctl.userKey("carol")
	ts := lab.Nodes[0]
	w := startWeftdIn(t, lab, "weft1", lab.Net, WeftdConfig{})
	upBoth(t, ctl.URL, key, func() error { return ts.Up(ctl.URL, key) }, func() error { return w.Up(ctl.URL, key) })
	ts.WaitRunning(30 * time.Second)
	wst := w.WaitRunning(30 * time.Second)

	// a. weftd lists the official peer; the official client lists weftd
	// with its host name, OS and addresses.
	nettest.WaitFor(t, 15*time.Second, func() error {
		st, err := w.StatusJSON()
		if err != nil {
			return err
		}
		if p := peerByHost(st, ts.Node.Name); p == nil || !p.Online || len(p.TailscaleIPs) == 0 {
			return fmt.Errorf("weft status does not list %s online: %+v", ts.Node.Name, p)
		}
		tst, err := ts.StatusJSON()
		if err != nil {
			return err
		}
		p := peerByHost(tst, w.Node.Name)
		if p == nil {
			return fmt.Errorf("tailscale status does not list %s", w.Node.Name)
		}
		if p.OS != "linux" || !p.Online || fmt.Sprint(p.TailscaleIPs) != fmt.Sprint(wst.TailscaleIPs) {
			return fmt.Errorf("tailscale's view of weftd: OS %q online %v IPs %v, want linux true %v", p.OS, p.Online, p.TailscaleIPs, wst.TailscaleIPs)
		}
		return nil
	})
	out, err := w.Weft("status")
	t.Logf("weft status (%v):\n%s", err, out)
	a, b := weftPeer(w), tsPeer(ts)

	// b. ICMP, CLI pings and HTTP both ways over a direct path.
	checkPair(t, a, b)

	// c. UDP blocked: traffic continues over the embedded DERP; unblocked:
	// back to direct.
	failover(t, a, b)
	if out, err := w.Weft("netcheck"); err != nil || !strings.Contains(out, "900") {
		t.Errorf("weft netcheck: %v\n%s", err, out)
	} else {
		t.Logf("weft netcheck:\n%s", out)
	}
	for _, verb := range []string{"restun", "rebind"} {
		if out, err := w.Weft("debug", verb); err != nil {
			t.Errorf("weft debug %s: %v\n%s", verb, err, out)
		}
	}
	if out, err := w.Weft("debug", "derp-map"); err != nil || !strings.Contains(out, `"RegionCode": "weft"`) {
		t.Errorf("weft debug derp-map: %v\n%s", err, out)
	}
	// After a rebind the path comes back.
	pingDirect(t, a, b.ipv4(t))
}

// failover blocks UDP between a and b, waits for tunnel traffic to flow
// again (over DERP), then unblocks and waits for the direct path, logging
// both switch-over times.
func failover(t *testing.T, a, b peer) (toDERP, toDirect time.Duration) {
	t.Helper()
	return failoverVia(t, a, b, "weft")
}

// failoverVia is failover with the relay's region code as the CLI ping
// shows it ("via DERP(<code>)").
func failoverVia(t *testing.T, a, b peer, regionCode string) (toDERP, toDirect time.Duration) {
	t.Helper()
	bIP := b.ipv4(t)
	start := time.Now()
	a.node.BlockUDP(b.node.Addr)
	b.node.BlockUDP(a.node.Addr)
	// The direct path stays trusted for up to 6.5 s after its last pong,
	// so first wait until it is really dead, then for traffic to resume.
	nettest.WaitFor(t, 60*time.Second, func() error {
		ps, err := a.peerStatus(b.name)
		if err != nil {
			return err
		}
		if ps.CurAddr != "" {
			return fmt.Errorf("%s still direct to %s via %s", a.name, b.name, ps.CurAddr)
		}
		return a.node.Ping(bIP)
	})
	toDERP = time.Since(start)
	out, err := a.cli("ping", "-c", "3", "--until-direct=false", bIP.String())
	if via := "via DERP(" + regionCode + ")"; err != nil || !strings.Contains(out, via) {
		t.Fatalf("%s ping with UDP blocked did not go %s: %v\n%s", a.name, via, err, out)
	}
	if _, err := httpFetch(a.node, "http://"+net.JoinHostPort(bIP.String(), "8000")+"/"); err != nil {
		t.Fatalf("HTTP over DERP: %v", err)
	}
	t.Logf("UDP blocked: %s -> %s traffic resumed over DERP after %v", a.name, b.name, toDERP.Round(time.Millisecond))

	start = time.Now()
	a.node.UnblockUDP(b.node.Addr)
	b.node.UnblockUDP(a.node.Addr)
	nettest.WaitFor(t, 60*time.Second, func() error {
		// Keep the session active so heartbeats and discovery run.
		a.node.Ping(bIP)
		ps, err := a.peerStatus(b.name)
		if err != nil {
			return err
		}
		if ps.CurAddr == "" {
			return errors.New("not direct yet")
		}
		return nil
	})
	toDirect = time.Since(start)
	t.Logf("UDP unblocked: %s -> %s back to direct after %v", a.name, b.name, toDirect.Round(time.Millisecond))
	return toDERP, toDirect
}

// TestWeftdPair is issue 6 acceptance 1–3 between two weftds.
func TestWeftdPair(t *testing.T) {
	lab := NewLab(t, LabConfig{NoDerper: true})
	ctl := startWeftControl(t, lab)
	key := ctl.userKey("dave")
	w1 := startWeftdIn(t, lab, "weft1", lab.Net, WeftdConfig{})
	w2 := startWeftdIn(t, lab, "weft2", lab.Net, WeftdConfig{})
	upBoth(t, ctl.URL, key, func() error { return w1.Up(ctl.URL, key) }, func() error { return w2.Up(ctl.URL, key) })
	w1.WaitRunning(30 * time.Second)
	w2.WaitRunning(30 * time.Second)
	a, b := weftPeer(w1), weftPeer(w2)
	checkPair(t, a, b)
	rebind(t, w1, b)
	failover(t, a, b)
}

// rebind runs `weft debug rebind` on w: its UDP socket is closed and bound
// again on the same port, and the peer p reaches it directly on that port
// again.
func rebind(t *testing.T, w *Weftd, p peer) {
	t.Helper()
	if out, err := w.Weft("debug", "rebind"); err != nil {
		t.Fatalf("weft debug rebind: %v\n%s", err, out)
	}
	nettest.WaitFor(t, 5*time.Second, func() error {
		if tail := w.Proc.Tail(40); !strings.Contains(tail, "rebound UDP socket") {
			return fmt.Errorf("%s did not log a rebound socket:\n%s", w.Node.Name, tail)
		}
		return nil
	})
	a := weftPeer(w)
	icmpPing(t, a, p.ipv4(t))
	start := time.Now()
	via := pingDirect(t, p, a.ipv4(t))
	if want := net.JoinHostPort(w.Node.Addr.String(), "41641"); via != want {
		t.Fatalf("after rebind %s reaches %s via %s, want %s", p.name, w.Node.Name, via, want)
	}
	t.Logf("after rebind: %s -> %s direct via %s again after %v", p.name, w.Node.Name, via, time.Since(start).Round(time.Millisecond))
}

// natFirewall makes a nettest NAT router drop unsolicited inbound UDP, as
// home routers do. Without it hole punching fails for official clients as
// well (measured: two tailscaleds stay on DERP): a peer's disco ping that
// arrives before the local node has sent anything creates a conntrack entry
// on the router for exactly the 5-tuple the local node's own outbound ping
// needs, so masquerade moves that ping to another source port, which the
// peer's NAT then drops. Dropped before conntrack confirms it, the
// unsolicited packet leaves no entry behind.
const natFirewall = `
table ip weft_nat_fw {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "eth0" meta l4proto udp ct state new drop
	}
}
`

// natPair builds the NAT scenarios' lab: weftd behind router r1 and an
// official tailscaled behind r2, both routers dropping unsolicited inbound
// UDP (natFirewall) and r1 also running extraR1 (nft rules, may be empty),
// both nodes up for user and Running.
func natPair(t *testing.T, user, extraR1 string) (r1, r2 *nettest.Node, w *Weftd, a, b peer) {
	t.Helper()
	lab := NewLab(t, LabConfig{NoDerper: true})
	ctl := startWeftControl(t, lab)
	key := ctl.userKey(user)
	r1, in1 := lab.NewNAT("nat1", lab.Net)
	r2, in2 := lab.NewNAT("nat2", lab.Net)
	if extraR1 != "" {
		if err := r1.NFT(extraR1); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*nettest.Node{r1, r2} {
		if err := r.NFT(natFirewall); err != nil {
			t.Fatal(err)
		}
	}
	w = startWeftdIn(t, lab, "weft1", in1, WeftdConfig{Args: []string{"--verbose=1"}})
	ts := lab.AddTailscaled(lab.NewNode("ts1", in2))
	upBoth(t, ctl.URL, key, func() error { return ts.Up(ctl.URL, key) }, func() error { return w.Up(ctl.URL, key) })
	ts.WaitRunning(30 * time.Second)
	w.WaitRunning(30 * time.Second)
	return r1, r2, w, weftPeer(w), tsPeer(ts)
}

// TestWeftdNAT is issue 6 acceptance 4: weftd and the official client, each
// behind its own NAT, find a direct path through STUN and CallMeMaybe.
func TestWeftdNAT(t *testing.T) {
	r1, r2, w, a, b := natPair(t, "erin", "")
	aIP, bIP := a.ipv4(t), b.ipv4(t)
	icmpPing(t, a, bIP)
	viaA := pingDirect(t, a, bIP)
	viaB := pingDirect(t, b, aIP)
	t.Logf("weftd -> tailscaled via %s, tailscaled -> weftd via %s", viaA, viaB)
	// Each side must reach the other's NAT's outside address.
	if !strings.HasPrefix(viaA, r2.Addr.String()+":") || !strings.HasPrefix(viaB, r1.Addr.String()+":") {
		t.Errorf("direct paths %s and %s do not go through the NATs' addresses %v and %v", viaA, viaB, r2.Addr, r1.Addr)
	}
	if out, err := w.Weft("netcheck"); err != nil || !strings.Contains(out, r1.Addr.String()) {
		t.Errorf("weft netcheck does not show the NAT's address %v: %v\n%s", r1.Addr, err, out)
	}
}

// TestWeftdUserspaceNonRoot is issue 6 acceptance 6: weftd as nobody in
// userspace-networking mode serves SOCKS5 and HTTP proxies into the
// tailnet, and a peer reaches a service on the node's loopback through
// the node's tunnel address.
func TestWeftdUserspaceNonRoot(t *testing.T) {
	nettest.RequireTools(t, "curl")
	lab := NewLab(t, LabConfig{Nodes: 1, NoDerper: true})
	ctl := startWeftControl(t, lab)
	key := ctl.userKey("frank")
	ts := lab.Nodes[0]
	w := startWeftdIn(t, lab, "weft1", lab.Net, WeftdConfig{
		Tun: Userspace, User: "nobody", Socks5: "127.0.0.1:1080", HTTPProxy: "127.0.0.1:8080",
	})
	upBoth(t, ctl.URL, key, func() error { return ts.Up(ctl.URL, key) }, func() error { return w.Up(ctl.URL, key) })
	ts.WaitRunning(30 * time.Second)
	w.WaitRunning(30 * time.Second)
	if out, err := w.Node.Exec("ps", "-o", "user=", "-p", fmt.Sprint(w.Proc.Pid())); err != nil || strings.TrimSpace(out) != "nobody" {
		t.Fatalf("weftd does not run as nobody: %v %q", err, out)
	}
	a, b := weftPeer(w), tsPeer(ts)
	tsIP, wIP := b.ipv4(t), a.ipv4(t)
	serveHTTP(t, ts.Node, net.JoinHostPort(tsIP.String(), "8000"))
	url := "http://" + net.JoinHostPort(tsIP.String(), "8000") + "/"
	want := sha256.Sum256(payload())
	for _, proxy := range [][]string{{"--socks5", "127.0.0.1:1080"}, {"-x", "http://127.0.0.1:8080"}} {
		nettest.WaitFor(t, 30*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			args := append([]string{"curl", "-sS", "--max-time", "20"}, proxy...)
			out, err := nettest.Output(ctx, w.Node.NS, append(args, url)...)
			if err != nil {
				return fmt.Errorf("curl %v: %v", proxy, err)
			}
			if got := sha256.Sum256([]byte(out)); got != want {
				return fmt.Errorf("curl %v: %d bytes, not the payload", proxy, len(out))
			}
			return nil
		})
		t.Logf("curl %s %s: ok", strings.Join(proxy, " "), url)
	}
	// A local service on the userspace node's loopback, reached by the
	// peer at the node's tunnel address.
	serveHTTP(t, w.Node, "127.0.0.1:8081")
	nettest.WaitFor(t, 30*time.Second, func() error {
		_, err := httpFetch(ts.Node, "http://"+net.JoinHostPort(wIP.String(), "8081")+"/")
		return err
	})
	icmpPing(t, b, wIP)
	t.Logf("userspace weftd as nobody: proxies and inbound forwarding work; path %s", pingDirect(t, a, tsIP))
}

// TestWeftdInteractiveLogin is issue 5 acceptance 1's interactive half in
// namespaces: `weft up` without a key shows the server's login URL, the
// admin approves it, up completes, and the official peer lists the node.
func TestWeftdInteractiveLogin(t *testing.T) {
	lab := NewLab(t, LabConfig{Nodes: 1, NoDerper: true})
	ctl := startWeftControl(t, lab)
	key := ctl.userKey("erin")
	ts := lab.Nodes[0]
	if err := ts.Up(ctl.URL, key); err != nil {
		t.Fatal(err)
	}
	w := startWeftdIn(t, lab, "weftia", lab.Net, WeftdConfig{})
	upDone := make(chan error, 1)
	var out string
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		var err error
		// Combined output: like tailscale, weft prints the URL on stderr.
		out, err = nettest.Exec(ctx, w.Node.NS, w.cfg.Weft, "--socket="+w.Socket, "up", "--login-server="+ctl.URL, "--hostname=weftia", "--timeout=80s")
		upDone <- err
	}()
	re := regexp.MustCompile(regexp.QuoteMeta(ctl.URL) + `/register/([0-9a-f]+)`)
	var id string
	nettest.WaitFor(t, 30*time.Second, func() error {
		st, err := w.StatusJSON()
		if err != nil {
			return err
		}
		m := re.FindStringSubmatch(st.AuthURL)
		if m == nil {
			return fmt.Errorf("AuthURL %q", st.AuthURL)
		}
		id = m[1]
		return nil
	})
	ctl.mustAdmin("nodes", "register", "--user", "erin", id)
	select {
	case err := <-upDone:
		if err != nil {
			t.Fatalf("weft up: %v\n%s", err, out)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("weft up did not finish after approval")
	}
	if !strings.Contains(out, ctl.URL+"/register/") {
		t.Errorf("weft up did not show the login URL:\n%s", out)
	}
	w.WaitRunning(30 * time.Second)
	nettest.WaitFor(t, 10*time.Second, func() error {
		ps, err := tsPeer(ts).peerStatus("weftia")
		if err != nil {
			return err
		}
		if ps.OS != "linux" || len(ps.TailscaleIPs) == 0 {
			return fmt.Errorf("official view of weftia: %+v", ps)
		}
		return nil
	})
}
