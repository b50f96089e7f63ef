package relay_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/relay"
	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// meshPair starts two relays that mesh with each other over plain HTTP.
func meshPair(t *testing.T, meshKey string) (a, b *testServer) {
	t.Helper()
	var ha, hb http.Handler
	hsA := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ha.ServeHTTP(w, r) }))
	hsB := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hb.ServeHTTP(w, r) }))
	urlA := "http://" + hsA.Listener.Addr().String() + "/derp"
	urlB := "http://" + hsB.Listener.Addr().String() + "/derp"
	mk := func(peer string) *relay.Server {
		s, err := relay.New(relay.Options{
			PrivateKey: key.NewNode(), Logger: testLogger(t), MeshKey: meshKey,
			MeshWith: []string{peer, urlA}, // urlA lists A itself too: self-connects are skipped
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	sa, sb := mk(urlB), mk(urlA)
	ha, hb = sa.Handler(), sb.Handler()
	hsA.Start()
	hsB.Start()
	t.Cleanup(func() { sa.Close(); sb.Close(); hsA.Close(); hsB.Close() })
	return &testServer{Server: sa, hs: hsA, url: urlA}, &testServer{Server: sb, hs: hsB, url: urlB}
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMesh(t *testing.T) {
	meshKey := strings.Repeat("0f", 32)
	a, b := meshPair(t, meshKey)
	x, _ := dial(t, a.url, derpclient.Options{})
	y, _ := dial(t, b.url, derpclient.Options{})
	waitFor(t, "a learns y", func() bool { return a.HasForwarder(y.PublicKey()) })
	waitFor(t, "b learns x", func() bool { return b.HasForwarder(x.PublicKey()) })

	if err := x.Send(y.PublicKey(), []byte("x→y")); err != nil {
		t.Fatal(err)
	}
	if m := recvType(t, y, derp.FrameRecvPacket); m.Source != x.PublicKey() || string(m.Packet) != "x→y" {
		t.Fatalf("y got %q from %v", m.Packet, m.Source)
	}
	if err := y.Send(x.PublicKey(), []byte("y→x")); err != nil {
		t.Fatal(err)
	}
	if m := recvType(t, x, derp.FrameRecvPacket); m.Source != y.PublicKey() || string(m.Packet) != "y→x" {
		t.Fatalf("x got %q from %v", m.Packet, m.Source)
	}
	if st := a.Stats(); st.PacketsForwardOut != 1 || st.PacketsForwardedIn != 1 {
		t.Errorf("a stats: %+v", st)
	}

	// y leaves the region: x heard from y, so x is told.
	y.Close()
	if m := recvType(t, x, derp.FramePeerGone); m.Peer != y.PublicKey() || m.Reason != derp.PeerGoneDisconnected {
		t.Fatalf("PeerGone %v %v", m.Peer, m.Reason)
	}
	waitFor(t, "a forgets y", func() bool { return !a.HasForwarder(y.PublicKey()) })

	// A mesh peer can close a client elsewhere.
	mk, _ := derp.ParseMeshKey(meshKey)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	op, err := derpclient.DialOptions(ctx, a.url, key.NewNode(), derpclient.Options{MeshKey: mk})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if err := op.ClosePeer(x.PublicKey()); err != nil {
		t.Fatal(err)
	}
	x.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, err := x.Recv(); err != nil {
			break // closed by the server
		}
	}
	waitFor(t, "x gone from a", func() bool { return !a.IsConnected(x.PublicKey()) })
}

func TestWatchConns(t *testing.T) {
	meshKey := strings.Repeat("11", 32)
	ts := newServer(t, relay.Options{MeshKey: meshKey})
	x, _ := dial(t, ts.url, derpclient.Options{})
	mk, _ := derp.ParseMeshKey(meshKey)
	w, _ := dial(t, ts.url, derpclient.Options{MeshKey: mk})
	if err := w.WatchConns(); err != nil {
		t.Fatal(err)
	}
	seen := map[key.NodePublic]derp.PeerPresentFlags{}
	for len(seen) < 2 {
		m := recvType(t, w, derp.FramePeerPresent)
		seen[m.Present.Key] = m.Present.Flags
		if !m.Present.Addr.Addr().IsLoopback() {
			t.Errorf("PeerPresent addr %v", m.Present.Addr)
		}
	}
	if seen[x.PublicKey()] != derp.PeerPresentIsRegular || seen[w.PublicKey()] != derp.PeerPresentIsMeshPeer {
		t.Fatalf("flags %v", seen)
	}
	x.Close()
	if m := recvType(t, w, derp.FramePeerGone); m.Peer != x.PublicKey() {
		t.Fatalf("PeerGone %v", m.Peer)
	}
}
