package relay_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"weft.dev/weft/relay"
	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// rawLogin opens a TCP connection, upgrades and logs in by hand, returning
// the connection positioned after ServerInfo, ready for hostile frames.
func rawLogin(t *testing.T, ts *testServer) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, br := rawUpgrade(t, ts)
	priv := key.NewNode()
	_, p, err := derp.ReadFrame(br, 1024, nil)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := derp.ParseServerKey(p)
	if err != nil {
		t.Fatal(err)
	}
	ci, _ := derp.SealClientInfo(nil, priv, sk, derp.ClientInfo{Version: 2, CanAckPings: true})
	nc.Write(append(derp.AppendHeader(nil, derp.FrameClientInfo, uint32(len(ci))), ci...))
	if ft, _, err := derp.ReadFrame(br, derp.MaxFrameLen, nil); err != nil || ft != derp.FrameServerInfo {
		t.Fatalf("login: %v %v", ft, err)
	}
	return nc, br
}

func rawUpgrade(t *testing.T, ts *testServer) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	fmt.Fprintf(nc, "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\nDerp-Fast-Start: 1\r\n\r\n")
	return nc, bufio.NewReader(nc)
}

// expectClosed reads until the server closes the connection.
func expectClosed(t *testing.T, name string, nc net.Conn, br *bufio.Reader) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err := io.Copy(io.Discard, br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("%s: connection not closed by server: %v", name, err)
	}
	// nil (EOF) or a reset both mean the server cut the connection.
}

// TestHostileClients runs 100 well-behaved clients exchanging packets in
// pairs while other clients send garbage, oversize frames, mesh-only
// frames and floods. Only the misbehaving connections may suffer.
func TestHostileClients(t *testing.T) {
	ts := newServer(t, relay.Options{RateLimitBytesPerSec: 1 << 20, RateLimitBurst: 128 << 10})
	const pairs = 50
	var good [2 * pairs]*derpclient.Client
	for i := range good {
		good[i], _ = dial(t, ts.url, derpclient.Options{})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*pairs)
	const perClient = 200
	for i := range pairs {
		a, b := good[2*i], good[2*i+1]
		for _, pr := range [][2]*derpclient.Client{{a, b}, {b, a}} {
			wg.Add(2)
			go func() { // sender
				defer wg.Done()
				pkt := make([]byte, 600)
				for n := range perClient {
					binary.BigEndian.PutUint32(pkt, uint32(n))
					if err := pr[0].Send(pr[1].PublicKey(), pkt); err != nil {
						errs <- err
						return
					}
					if n%20 == 0 {
						time.Sleep(time.Millisecond)
					}
				}
			}()
			go func() { // receiver
				defer wg.Done()
				pr[1].SetReadDeadline(time.Now().Add(30 * time.Second))
				for want := 0; want < perClient; {
					m, err := pr[1].Recv()
					if err != nil {
						errs <- fmt.Errorf("good client: after %d packets: %w", want, err)
						return
					}
					if m.Type != derp.FrameRecvPacket || m.Source != pr[0].PublicKey() {
						continue // not from our partner (the flooder targets good[0])
					}
					if got := binary.BigEndian.Uint32(m.Packet); got != uint32(want) {
						errs <- fmt.Errorf("good client: got packet %d, want %d", got, want)
						return
					}
					want++
				}
			}()
		}
	}

	// Hostile clients, concurrently with the good traffic.
	var hwg sync.WaitGroup
	hostile := func(name string, f func(t *testing.T)) {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			t.Run(name, f)
		}()
	}
	hostile("garbage before login", func(t *testing.T) {
		nc, br := rawUpgrade(t, ts)
		nc.Write(bytes.Repeat([]byte{0xff}, 4096))
		expectClosed(t, "garbage", nc, br)
	})
	hostile("oversize client info", func(t *testing.T) {
		nc, br := rawUpgrade(t, ts)
		nc.Write(derp.AppendHeader(nil, derp.FrameClientInfo, derp.MaxClientInfoLen+1))
		expectClosed(t, "big clientinfo", nc, br)
	})
	hostile("bad client info box", func(t *testing.T) {
		nc, br := rawUpgrade(t, ts)
		nc.Write(append(derp.AppendHeader(nil, derp.FrameClientInfo, 100), make([]byte, 100)...))
		expectClosed(t, "bad box", nc, br)
	})
	hostile("oversize packet", func(t *testing.T) {
		nc, br := rawLogin(t, ts)
		nc.Write(derp.AppendHeader(nil, derp.FrameSendPacket, derp.KeyLen+derp.MaxPacketSize+1))
		expectClosed(t, "oversize", nc, br)
	})
	hostile("huge unknown frame", func(t *testing.T) {
		nc, br := rawLogin(t, ts)
		nc.Write(derp.AppendHeader(nil, 0x7f, 1<<31))
		expectClosed(t, "unknown", nc, br)
	})
	hostile("mesh frames without mesh key", func(t *testing.T) {
		nc, br := rawLogin(t, ts)
		nc.Write(derp.AppendHeader(nil, derp.FrameWatchConns, 0))
		expectClosed(t, "watchconns", nc, br)
	})
	hostile("forward without mesh key", func(t *testing.T) {
		nc, br := rawLogin(t, ts)
		nc.Write(append(derp.AppendHeader(nil, derp.FrameForwardPacket, 64), make([]byte, 64)...))
		expectClosed(t, "forward", nc, br)
	})
	hostile("bad NotePreferred", func(t *testing.T) {
		nc, br := rawLogin(t, ts)
		nc.Write(append(derp.AppendHeader(nil, derp.FrameNotePreferred, 2), 1, 1))
		expectClosed(t, "notepreferred", nc, br)
	})
	hostile("flood to unknown and to a good client", func(t *testing.T) {
		// A flood is rate limited by back-pressure; it must not starve others.
		nc, _ := rawLogin(t, ts)
		victim := good[0].PublicKey()
		frame := append(derp.AppendHeader(nil, derp.FrameSendPacket, derp.KeyLen+1200), derp.AppendKey(nil, victim)...)
		frame = append(frame, make([]byte, 1200)...)
		nobody := append(derp.AppendHeader(nil, derp.FrameSendPacket, derp.KeyLen+1200), derp.AppendKey(nil, key.NewNode().Public())...)
		nobody = append(nobody, make([]byte, 1200)...)
		ping := append(derp.AppendHeader(nil, derp.FramePing, 8), make([]byte, 8)...)
		burst := bytes.Join([][]byte{frame, nobody, ping, ping, ping}, nil)
		nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
		for {
			if _, err := nc.Write(burst); err != nil {
				return // write deadline: the server throttled us
			}
		}
	})
	hwg.Wait()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Logf("stats: %+v", ts.Stats())
	}
}

// TestBatchedFramesThenStall sends several packets in one write followed by
// half a frame and then stalls: the relay wakes the destination's writer
// once per batch, and must do so before it blocks reading the rest.
func TestBatchedFramesThenStall(t *testing.T) {
	ts := newServer(t, relay.Options{})
	dst, dpriv := dial(t, ts.url, derpclient.Options{})
	nc, _ := rawLogin(t, ts)
	var b []byte
	for i := range 5 {
		pkt := bytes.Repeat([]byte{byte(i + 1)}, 100)
		b = derp.AppendHeader(b, derp.FrameSendPacket, uint32(derp.KeyLen+len(pkt)))
		k := dpriv.Public().Raw32()
		b = append(append(b, k[:]...), pkt...)
	}
	b = derp.AppendHeader(b, derp.FrameSendPacket, derp.KeyLen+100) // never completed
	if _, err := nc.Write(append(b, 1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m := recvType(t, dst, derp.FrameRecvPacket)
		if len(m.Packet) != 100 || m.Packet[0] != byte(i+1) {
			t.Fatalf("packet %d: got %d bytes starting %v", i, len(m.Packet), m.Packet[:min(1, len(m.Packet))])
		}
	}
}
