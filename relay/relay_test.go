package relay_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/relay"
	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// testServer is a relay behind an httptest server on loopback.
type testServer struct {
	*relay.Server
	hs  *httptest.Server
	url string // http://127.0.0.1:port/derp
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("RELAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

func newServer(t *testing.T, opts relay.Options) *testServer {
	t.Helper()
	if opts.PrivateKey.IsZero() {
		opts.PrivateKey = key.NewNode()
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	s, err := relay.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	ts := &testServer{Server: s, hs: hs, url: hs.URL + "/derp"}
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	return ts
}

func dial(t *testing.T, url string, opts derpclient.Options) (*derpclient.Client, key.NodePrivate) {
	t.Helper()
	priv := key.NewNode()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := derpclient.DialOptions(ctx, url, priv, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, priv
}

// recvType reads until a frame of type ft arrives or the deadline passes.
func recvType(t *testing.T, c *derpclient.Client, ft derp.FrameType) derpclient.Message {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	for {
		m, err := c.Recv()
		if err != nil {
			t.Fatalf("waiting for %v: %v", ft, err)
		}
		if m.Type == ft {
			return m
		}
	}
}

func TestExchange(t *testing.T) {
	ts := newServer(t, relay.Options{})
	for _, scheme := range []string{"http", "ws"} {
		t.Run(scheme, func(t *testing.T) {
			url := strings.Replace(ts.url, "http", scheme, 1)
			a, _ := dial(t, url, derpclient.Options{})
			b, _ := dial(t, url, derpclient.Options{})
			if a.ServerPublicKey() != ts.PublicKey() || a.ServerInfo().Version != derp.ProtocolVersion {
				t.Fatalf("login: server key %v info %+v", a.ServerPublicKey(), a.ServerInfo())
			}
			for i, pair := range [][2]*derpclient.Client{{a, b}, {b, a}} {
				msg := []byte(fmt.Sprintf("hello %d over %s", i, scheme))
				if err := pair[0].Send(pair[1].PublicKey(), msg); err != nil {
					t.Fatal(err)
				}
				m := recvType(t, pair[1], derp.FrameRecvPacket)
				if m.Source != pair[0].PublicKey() || !bytes.Equal(m.Packet, msg) {
					t.Fatalf("got %q from %v, want %q from %v", m.Packet, m.Source, msg, pair[0].PublicKey())
				}
			}
			// Ping/Pong and NotePreferred.
			if err := a.NotePreferred(true); err != nil {
				t.Fatal(err)
			}
			if err := a.Ping([8]byte{1, 2, 3}); err != nil {
				t.Fatal(err)
			}
			if m := recvType(t, a, derp.FramePong); m.PingData != [8]byte{1, 2, 3} {
				t.Fatalf("pong %x", m.PingData)
			}
			ts.SetHealth("relay degraded")
			if m := recvType(t, b, derp.FrameHealth); m.Health != "relay degraded" {
				t.Fatalf("health %q", m.Health)
			}
		})
	}
}

func discoPacket() []byte {
	p := append([]byte("TS💬"), make([]byte, 32+24+16)...)
	return p
}

func TestPeerGone(t *testing.T) {
	ts := newServer(t, relay.Options{})
	a, _ := dial(t, ts.url, derpclient.Options{})
	b, _ := dial(t, ts.url, derpclient.Options{})
	nobody := key.NewNode().Public()

	// Disco to an unknown key: PeerGone(not here).
	if err := a.Send(nobody, discoPacket()); err != nil {
		t.Fatal(err)
	}
	m := recvType(t, a, derp.FramePeerGone)
	if m.Peer != nobody || m.Reason != derp.PeerGoneNotHere {
		t.Fatalf("PeerGone = %v %v", m.Peer, m.Reason)
	}

	// b heard from a; when a leaves, b is told.
	if err := a.Send(b.PublicKey(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	recvType(t, b, derp.FrameRecvPacket)
	a.Close()
	m = recvType(t, b, derp.FramePeerGone)
	if m.Peer != a.PublicKey() || m.Reason != derp.PeerGoneDisconnected {
		t.Fatalf("PeerGone = %v %v", m.Peer, m.Reason)
	}
}

func TestVerify(t *testing.T) {
	allowed := key.NewNode()
	meshKey := strings.Repeat("ab", 32)
	ts := newServer(t, relay.Options{
		MeshKey: meshKey,
		Verify: func(ctx context.Context, k key.NodePublic, info relay.ClientInfo, remote netip.AddrPort) error {
			if !remote.Addr().IsLoopback() {
				return fmt.Errorf("remote %v not loopback", remote)
			}
			if k != allowed.Public() {
				return errors.New("unknown node")
			}
			return nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := derpclient.Dial(ctx, ts.url, allowed)
	if err != nil {
		t.Fatalf("allowed client: %v", err)
	}
	c.Close()
	if c, err := derpclient.Dial(ctx, ts.url, key.NewNode()); err == nil {
		c.Close()
		t.Fatal("unknown client admitted")
	}
	// Mesh peers skip verification.
	mk, _ := derp.ParseMeshKey(meshKey)
	c, err = derpclient.DialOptions(ctx, ts.url, key.NewNode(), derpclient.Options{MeshKey: mk})
	if err != nil {
		t.Fatalf("mesh client: %v", err)
	}
	c.Close()
}

func TestCloseSendsRestarting(t *testing.T) {
	ts := newServer(t, relay.Options{RestartReconnectIn: 1500 * time.Millisecond, RestartTryFor: time.Minute})
	a, _ := dial(t, ts.url, derpclient.Options{})
	done := make(chan error, 1)
	go func() { done <- ts.Close() }()
	m := recvType(t, a, derp.FrameRestarting)
	if m.ReconnectIn != 1500*time.Millisecond || m.TryFor != time.Minute {
		t.Fatalf("Restarting %v %v", m.ReconnectIn, m.TryFor)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := derpclient.Dial(ctx, ts.url, key.NewNode()); err == nil {
		c.Close()
		t.Fatal("dial after Close succeeded")
	}
}

// TestSingleFlowNoDrops pushes one fast flow through a receiver that reads
// slower than the sender writes: back-pressure must deliver every packet,
// with inline writes and with every batch through the writer goroutine.
func TestSingleFlowNoDrops(t *testing.T) {
	for _, inline := range []bool{true, false} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) {
			ts := newServer(t, relay.Options{QueueDepth: 32})
			if !inline {
				relay.DisableInlineWrites(ts.Server)
			}
			singleFlowNoDrops(t, ts)
		})
	}
}

func singleFlowNoDrops(t *testing.T, ts *testServer) {
	a, _ := dial(t, ts.url, derpclient.Options{})
	b, _ := dial(t, ts.url, derpclient.Options{})
	const n = 20000
	errc := make(chan error, 1)
	go func() {
		pkt := make([]byte, 1280)
		for i := range n {
			binary.BigEndian.PutUint32(pkt, uint32(i))
			if err := a.Send(b.PublicKey(), pkt); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	b.SetReadDeadline(time.Now().Add(60 * time.Second))
	for want := range n {
		m, err := b.Recv()
		if err != nil {
			t.Fatalf("after %d packets: %v", want, err)
		}
		if m.Type != derp.FrameRecvPacket {
			continue
		}
		if got := binary.BigEndian.Uint32(m.Packet); got != uint32(want) {
			t.Fatalf("packet %d arrived as #%d (drops: %v)", got, want, ts.Stats().Dropped)
		}
		if want%1000 == 0 {
			time.Sleep(time.Millisecond) // a slow reader
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if d := ts.Stats().Dropped["queue_head"]; d != 0 {
		t.Fatalf("%d packets dropped", d)
	}
}
