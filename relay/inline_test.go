package relay

import (
	"context"
	"encoding/binary"
	"net"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// TestInlineHandoffKeepsOrder drives a sender's side of the relay by hand
// (deliver + flushWakes, as a reader does) towards a client that does not
// read: inline writes fill its socket until one is only partly taken and
// is handed to the destination's writer goroutine; later packets queue
// behind it. Once the client reads, every packet must arrive once, in
// order.
func TestInlineHandoffKeepsOrder(t *testing.T) {
	s, err := New(Options{PrivateKey: key.NewNode(), WriteTimeout: -1, BackpressureWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Close()
		hs.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	smallRcvBuf := func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
			if err != nil {
				return err
			}
			return serr
		}}
		return d.DialContext(ctx, network, addr)
	}
	b, err := derpclient.DialOptions(ctx, hs.URL+"/derp", key.NewNode(), derpclient.Options{Dial: smallRcvBuf})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var d *conn
	for d == nil {
		s.mu.Lock()
		if cs := s.clients[b.PublicKey()]; cs != nil {
			d = cs.active
		}
		s.mu.Unlock()
		if ctx.Err() != nil {
			t.Fatal("client never registered")
		}
		time.Sleep(time.Millisecond)
	}

	src := key.NewNode().Public()
	c := &conn{s: s, key: src, rm: &readMeter{}, ctx: ctx, waitTimer: time.NewTimer(time.Hour)}
	c.waitTimer.Stop()
	sent := 0
	send := func() {
		pk := s.pool.get(1200)
		binary.BigEndian.PutUint32(pk.data, uint32(sent))
		pk.src = src.Raw32()
		c.deliver(d, pk)
		c.flushWakes()
		sent++
	}
	for s.m.inlineHandoffs.Load() == 0 {
		if sent == 100000 {
			t.Fatalf("no inline write was handed off after %d packets (%d inline writes)", sent, s.m.inlineWrites.Load())
		}
		send()
	}
	for range 100 { // queued behind the handed-off bytes
		send()
	}

	b.SetReadDeadline(time.Now().Add(30 * time.Second))
	for want := 0; want < sent; {
		m, err := b.Recv()
		if err != nil {
			t.Fatalf("after %d of %d packets: %v", want, sent, err)
		}
		if m.Type != derp.FrameRecvPacket {
			continue
		}
		if m.Source != src {
			t.Fatalf("packet %d from %v, want %v", want, m.Source, src)
		}
		if got := int(binary.BigEndian.Uint32(m.Packet)); got != want || len(m.Packet) != 1200 {
			t.Fatalf("got packet #%d (%d bytes), want #%d (1200 bytes)", got, len(m.Packet), want)
		}
		want++
	}
	if w, h := s.m.inlineWrites.Load(), s.m.inlineHandoffs.Load(); w < 2 || h == 0 {
		t.Fatalf("inline writes %d, handoffs %d: the test did not exercise both", w, h)
	}
}
