package wgengine

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/magicsock"
	"weft.dev/weft/node/netmap"
	"weft.dev/weft/relay"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// lab is an in-process relay (DERP over loopback HTTP, STUN on the memory
// network) and a memory UDP network.
type lab struct {
	mn *magicsock.MemNetwork
	dm *ctrl.DERPMap
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("WEFT_TEST_VERBOSE") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newLab(t *testing.T) *lab {
	t.Helper()
	mn := magicsock.NewMemNetwork()
	rs, err := relay.New(relay.Options{PrivateKey: key.NewNode()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(rs.Handler())
	stunIP := netip.MustParseAddr("198.18.0.1")
	sc, err := mn.Host(stunIP).Listen(3478)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rs.ServeSTUN(ctx, sc) }()
	t.Cleanup(func() {
		cancel()
		sc.Close()
		<-done
		hs.Close()
		rs.Close()
	})
	port := hs.Listener.Addr().(*net.TCPAddr).Port
	dm := &ctrl.DERPMap{Regions: map[int]*ctrl.DERPRegion{900: {
		RegionID: 900, RegionCode: "test", RegionName: "test",
		Nodes: []*ctrl.DERPNode{{
			Name: "900a", RegionID: 900, HostName: "127.0.0.1", IPv4: "127.0.0.1", IPv6: "none",
			DERPPort: port, STUNPort: 3478, STUNTestIP: stunIP.String(),
		}},
	}}}
	return &lab{mn: mn, dm: dm}
}

type testNode struct {
	e    *Engine
	priv key.NodePrivate
	host netip.Addr // underlay
	ip   netip.Addr // tunnel

	mu sync.Mutex
	ls engine.LocalState
}

func (l *lab) newNode(t *testing.T, host, ip string) *testNode {
	t.Helper()
	n := &testNode{priv: key.NewNode(), host: netip.MustParseAddr(host), ip: netip.MustParseAddr(ip)}
	e, err := New(Options{Logger: testLogger(t), Net: l.mn.Host(n.host), DERPOverHTTP: true, ForwardInbound: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	n.e = e
	e.SetLocalStateCallback(func(ls engine.LocalState) {
		n.mu.Lock()
		n.ls = ls
		n.mu.Unlock()
	})
	// A first Reconfig with the key and DERP map starts STUN and DERP.
	if err := e.Reconfig(&netmap.NetworkMap{DERPMap: l.dm, SelfNode: n.self(nil)}, engine.Config{PrivateKey: n.priv}); err != nil {
		t.Fatal(err)
	}
	return n
}

func (n *testNode) local() engine.LocalState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ls
}

func (n *testNode) self(ls *engine.LocalState) *ctrl.Node {
	cn := &ctrl.Node{
		Key: n.priv.Public(), Name: n.ip.String() + ".test.", StableID: ctrl.StableNodeID(n.ip.String()),
		Addresses: []netip.Prefix{netip.PrefixFrom(n.ip, n.ip.BitLen())},
	}
	if ls != nil {
		cn.DiscoKey = ls.DiscoKey
		for _, e := range ls.Endpoints {
			cn.Endpoints = append(cn.Endpoints, e.Addr)
		}
		if ls.NetInfo != nil {
			cn.HomeDERP = ls.NetInfo.PreferredDERP
		}
	}
	return cn
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connect gives every node a netmap with all the others as peers.
func (l *lab) connect(t *testing.T, nodes ...*testNode) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, 10*time.Second, "home DERP and disco key", func() bool {
			ls := n.local()
			return ls.NetInfo != nil && ls.NetInfo.PreferredDERP != 0 && !ls.DiscoKey.IsZero()
		})
	}
	for _, n := range nodes {
		nm := &netmap.NetworkMap{DERPMap: l.dm, NodeKey: n.priv.Public(), PacketFilter: ctrl.AllowAll()}
		ls := n.local()
		nm.SelfNode = n.self(&ls)
		for _, p := range nodes {
			if p != n {
				pls := p.local()
				nm.Peers = append(nm.Peers, p.self(&pls))
			}
		}
		if err := n.e.Reconfig(nm, engine.Config{PrivateKey: n.priv}); err != nil {
			t.Fatal(err)
		}
	}
}

func (n *testNode) status(t *testing.T, peer *testNode) engine.PeerStatus {
	for _, ps := range n.e.PeerStatus() {
		if ps.Key == peer.priv.Public() {
			return ps
		}
	}
	t.Fatalf("no status for peer %v", peer.ip)
	return engine.PeerStatus{}
}

// echoServer serves an echo service on the node's tunnel address.
func (n *testNode) echoServer(t *testing.T, port uint16) {
	ln, err := n.e.Netstack().ListenTCP(netip.AddrPortFrom(n.ip, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
}

// roundTrip sends size random bytes through the echo service and checks
// they come back.
func roundTrip(t *testing.T, from, to *testNode, port uint16, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := from.e.Netstack().DialContext(ctx, "tcp", netip.AddrPortFrom(to.ip, port).String())
	if err != nil {
		t.Fatalf("dial %v: %v", to.ip, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	want := make([]byte, size)
	rand.Read(want)
	errc := make(chan error, 1)
	go func() { _, err := c.Write(want); errc <- err }()
	got := make([]byte, size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echoed bytes differ")
	}
}

func TestPingAndTCP(t *testing.T) {
	l := newLab(t)
	a := l.newNode(t, "198.18.1.1", "100.64.0.1")
	b := l.newNode(t, "198.18.1.2", "100.64.0.2")
	l.connect(t, a, b)
	b.echoServer(t, 7)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := a.e.Ping(ctx, b.ip, engine.PingDisco)
	if err != nil {
		t.Fatalf("ping: %v (%+v)", err, res)
	}
	t.Logf("ping: %+v", res)
	roundTrip(t, a, b, 7, 1<<20)
	waitFor(t, 10*time.Second, "direct path", func() bool { return a.status(t, b).CurAddr != "" })
	if got, want := a.status(t, b).CurAddr, netip.AddrPortFrom(b.host, b.e.Magicsock().LocalPort()).String(); got != want {
		t.Errorf("direct path = %q, want %q", got, want)
	}
	nr, err := a.e.Netcheck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if wantV4 := netip.AddrPortFrom(a.host, a.e.Magicsock().LocalPort()).String(); !nr.UDP || nr.PreferredDERP != 900 || nr.GlobalV4 != wantV4 {
		t.Errorf("netcheck = %+v, want UDP, home 900, global %s", nr, wantV4)
	}
	st := a.status(t, b)
	if st.TxBytes == 0 || st.RxBytes == 0 || st.LastHandshake.IsZero() {
		t.Errorf("status without traffic: %+v", st)
	}
}

func TestDERPThenDirectThenFallback(t *testing.T) {
	l := newLab(t)
	a := l.newNode(t, "198.18.1.1", "100.64.0.1")
	b := l.newNode(t, "198.18.1.2", "100.64.0.2")
	l.connect(t, a, b)
	b.echoServer(t, 7)

	// UDP blocked: everything goes via DERP.
	l.mn.SetBlocked(a.host, true)
	roundTrip(t, a, b, 7, 64<<10)
	if st := a.status(t, b); st.CurAddr != "" || st.Relay != "test" {
		t.Fatalf("with UDP blocked: status %+v, want relay via test", st)
	}

	// UDP unblocked: discovery upgrades to the direct path while traffic flows.
	l.mn.SetBlocked(a.host, false)
	start := time.Now()
	waitFor(t, 15*time.Second, "upgrade to direct", func() bool {
		roundTrip(t, a, b, 7, 1<<10)
		return a.status(t, b).CurAddr != ""
	})
	t.Logf("direct after %v", time.Since(start).Round(time.Millisecond))

	// Blocked again: the path falls back to DERP and traffic keeps flowing.
	l.mn.SetBlocked(a.host, true)
	start = time.Now()
	waitFor(t, 15*time.Second, "fallback to DERP", func() bool {
		roundTrip(t, a, b, 7, 1<<10)
		st := a.status(t, b)
		return st.CurAddr == "" && st.Relay == "test"
	})
	t.Logf("DERP fallback after %v", time.Since(start).Round(time.Millisecond))
	roundTrip(t, a, b, 7, 256<<10)
}
