//go:build unix

package wgengine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"weft.dev/weft/internal/clock"
	"weft.dev/weft/node/engine"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/tsmp"
)

// fakeTUN is an in-memory inner device. Pollable, it reads packets from
// one end of a non-blocking datagram socket pair (a file in Go's poller,
// like a kernel TUN), so the injector wakes it with a read deadline;
// otherwise it reads from a channel and the injector runs its pump.
type fakeTUN struct {
	c      chan []byte
	r, w   *os.File
	closed chan struct{}
	once   sync.Once
	// reads counts calls of Read.
	reads atomic.Int32

	mu sync.Mutex
	// guarded by mu:
	written [][]byte
}

func newFakeTUN(t *testing.T, pollable bool) *fakeTUN {
	ft := &fakeTUN{c: make(chan []byte, 16), closed: make(chan struct{})}
	if pollable {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			syscall.SetNonblock(fd, true)
		}
		ft.r, ft.w = os.NewFile(uintptr(fds[0]), "tun-r"), os.NewFile(uintptr(fds[1]), "tun-w")
		t.Cleanup(func() { ft.w.Close() })
	}
	return ft
}

// fromHost makes pkt the next packet the device reads.
func (ft *fakeTUN) fromHost(t *testing.T, pkt []byte) {
	t.Helper()
	if ft.w != nil {
		if _, err := ft.w.Write(pkt); err != nil {
			t.Fatal(err)
		}
		return
	}
	ft.c <- pkt
}

// toHost returns what filter.Write delivered.
func (ft *fakeTUN) toHost() [][]byte {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.written
}

func (ft *fakeTUN) File() *os.File {
	if ft.r == nil {
		return nil // a typed nil *os.File would be no file either
	}
	return ft.r
}

// waitReads polls until Read has been entered n times: the reader is
// then in, or about to be in, the device (an injection must wake it
// either way).
func (ft *fakeTUN) waitReads(t *testing.T, n int32) {
	t.Helper()
	waitFor(t, 5*time.Second, fmt.Sprintf("Read entered %d times", n), func() bool { return ft.reads.Load() >= n })
}

func (ft *fakeTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	ft.reads.Add(1)
	if ft.r != nil {
		n, err := ft.r.Read(bufs[0][offset:])
		if err != nil {
			return 0, err
		}
		sizes[0] = n
		return 1, nil
	}
	select {
	case p := <-ft.c:
		sizes[0] = copy(bufs[0][offset:], p)
		return 1, nil
	case <-ft.closed:
		return 0, os.ErrClosed
	}
}

func (ft *fakeTUN) Write(bufs [][]byte, offset int) (int, error) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	for _, b := range bufs {
		ft.written = append(ft.written, bytes.Clone(b[offset:]))
	}
	return len(bufs), nil
}

func (ft *fakeTUN) Close() error {
	ft.once.Do(func() {
		close(ft.closed)
		if ft.r != nil {
			ft.r.Close()
		}
	})
	return nil
}

func (ft *fakeTUN) MTU() (int, error)        { return 1280, nil }
func (ft *fakeTUN) Name() (string, error)    { return "fake", nil }
func (ft *fakeTUN) Events() <-chan tun.Event { return nil }
func (ft *fakeTUN) BatchSize() int           { return 4 }
func (ft *fakeTUN) writtenCount() int        { return len(ft.toHost()) }

const testOffset = 16 // wireguard-go's MessageTransportHeaderSize

var (
	selfIP = netip.MustParseAddr("100.64.0.2")
	peerIP = netip.MustParseAddr("100.64.0.1")
)

// wgSide is wireguard-go's end of a filter: Read in a loop, packets out
// on a channel.
type wgSide struct {
	pkts chan []byte
	errs chan error
}

func readLoop(f *filter) *wgSide {
	w := &wgSide{pkts: make(chan []byte, 64), errs: make(chan error, 1)}
	go func() {
		bufs := make([][]byte, 4)
		for i := range bufs {
			bufs[i] = make([]byte, 65535)
		}
		sizes := make([]int, len(bufs))
		for {
			n, err := f.Read(bufs, sizes, testOffset)
			for i := range n {
				if sizes[i] > 0 {
					w.pkts <- bytes.Clone(bufs[i][testOffset : testOffset+sizes[i]])
				}
			}
			if err != nil {
				w.errs <- err
				return
			}
		}
	}()
	return w
}

func (w *wgSide) next(t *testing.T, what string) []byte {
	t.Helper()
	select {
	case p := <-w.pkts:
		return p
	case err := <-w.errs:
		t.Fatalf("waiting for %s: Read failed: %v", what, err)
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s read within 5s", what)
	}
	return nil
}

func (w *wgSide) none(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case p := <-w.pkts:
		t.Fatalf("unexpected packet read: %x", p)
	case <-time.After(within):
	}
}

// writeFromPeer hands pkt to filter.Write as wireguard-go does.
func writeFromPeer(t *testing.T, f *filter, pkt []byte) {
	t.Helper()
	buf := append(make([]byte, testOffset), pkt...)
	if _, err := f.Write([][]byte{buf}, testOffset); err != nil {
		t.Fatal(err)
	}
}

func mustMarshal(t *testing.T, m interface{ AppendMarshal([]byte) ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.AppendMarshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestFilter(t *testing.T, pollable bool) (*filter, *fakeTUN, *pinger, *clock.Fake) {
	ft := newFakeTUN(t, pollable)
	f := newFilter(ft)
	if got := f.inj.file != nil; got != pollable {
		t.Fatalf("injector deadline mode = %v, want %v", got, pollable)
	}
	clk := clock.NewFake(time.Unix(1000, 0))
	f.pings = newPinger(testLogger(t), clk, f.inject)
	self := []netip.Prefix{netip.PrefixFrom(selfIP, 32)}
	f.set(self, compileFilter(ctrl.AllowAll(), self, false))
	t.Cleanup(func() { f.Close() })
	return f, ft, f.pings, clk
}

func forBothModes(t *testing.T, fn func(t *testing.T, pollable bool)) {
	for _, pollable := range []bool{true, false} {
		name := "pump"
		if pollable {
			name = "deadline"
		}
		t.Run(name, func(t *testing.T) { fn(t, pollable) })
	}
}

// A peer's TSMP ping is answered with an injected pong that wakes a Read
// blocked in the inner device; the host sees neither.
func TestFilterAnswersTSMPPing(t *testing.T) {
	forBothModes(t, func(t *testing.T, pollable bool) {
		f, ft, _, _ := newTestFilter(t, pollable)
		w := readLoop(f)
		hostPkt := mustMarshal(t, tsmp.Echo{IP: tsmp.IPHeader{Src: selfIP, Dst: peerIP}, ID: 1, Data: []byte("host")})
		ft.fromHost(t, hostPkt)
		if got := w.next(t, "host packet"); !bytes.Equal(got, hostPkt) {
			t.Fatalf("host packet read as %x, want %x", got, hostPkt)
		}
		ft.waitReads(t, 2)
		for i := range 3 {
			ping := tsmp.Ping{IP: tsmp.IPHeader{Src: peerIP, Dst: selfIP, ID: uint32(0x100 + i)}, Data: [8]byte{byte(i), 2, 3, 4, 5, 6, 7, 8}}
			writeFromPeer(t, f, mustMarshal(t, ping))
			want := mustMarshal(t, tsmp.Pong{IP: tsmp.IPHeader{Src: selfIP, Dst: peerIP, ID: uint32(^uint16(0x100 + i))}, Data: ping.Data})
			if got := w.next(t, "pong"); !bytes.Equal(got, want) {
				t.Fatalf("pong %d = %x, want %x", i, got, want)
			}
		}
		// Other TSMP messages are dropped, not answered.
		other := mustMarshal(t, tsmp.Ping{IP: tsmp.IPHeader{Src: peerIP, Dst: selfIP}})
		other[20] = byte(tsmp.TypeDiscoAdvertisement)
		writeFromPeer(t, f, other)
		w.none(t, 50*time.Millisecond)
		if n := ft.writtenCount(); n != 0 {
			t.Fatalf("the host received %d TSMP packets: %x", n, ft.toHost())
		}
		// Host traffic still flows after the wake-ups.
		ft.fromHost(t, hostPkt)
		if got := w.next(t, "host packet"); !bytes.Equal(got, hostPkt) {
			t.Fatalf("host packet read as %x, want %x", got, hostPkt)
		}
	})
}

// TSMP written by the host is dropped on the way out (only the engine
// speaks TSMP); a batch with it keeps its other packets.
func TestFilterDropsHostTSMP(t *testing.T) {
	forBothModes(t, func(t *testing.T, pollable bool) {
		f, ft, _, _ := newTestFilter(t, pollable)
		w := readLoop(f)
		spoof := mustMarshal(t, tsmp.Pong{IP: tsmp.IPHeader{Src: selfIP, Dst: peerIP}})
		udp := ipv4(ctrl.ProtoUDP, selfIP.String(), peerIP.String(), 5000, 53, 0)
		ft.fromHost(t, spoof)
		ft.fromHost(t, udp)
		if got := w.next(t, "UDP packet"); !bytes.Equal(got, udp) {
			t.Fatalf("read %x, want the UDP packet %x (TSMP from the host must be dropped)", got, udp)
		}
	})
}

// pingThrough runs a ping in the background and returns its result.
func pingThrough(p *pinger, ctx context.Context, typ engine.PingType) chan pingOutcome {
	c := make(chan pingOutcome, 1)
	go func() {
		lat, port, err := p.ping(ctx, typ, selfIP, peerIP)
		c <- pingOutcome{lat, port, err}
	}()
	return c
}

type pingOutcome struct {
	lat  time.Duration
	port uint16
	err  error
}

func waitOutcome(t *testing.T, c chan pingOutcome) pingOutcome {
	t.Helper()
	select {
	case o := <-c:
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("ping did not return within 5s")
	}
	return pingOutcome{}
}

// The engine's TSMP and ICMP pings go out through Read; the matching reply
// completes the ping with the fake clock's latency and never reaches the
// host, while a reply that does not match (other data) does.
func TestFilterOwnPings(t *testing.T) {
	forBothModes(t, func(t *testing.T, pollable bool) {
		f, ft, p, clk := newTestFilter(t, pollable)
		w := readLoop(f)
		ctx := context.Background()

		res := pingThrough(p, ctx, engine.PingTSMP)
		m, err := tsmp.Parse(w.next(t, "TSMP ping"))
		if err != nil {
			t.Fatal(err)
		}
		ping, ok := m.(tsmp.Ping)
		if !ok || ping.IP.Src != selfIP || ping.IP.Dst != peerIP {
			t.Fatalf("sent %+v, want a TSMP ping %v -> %v", m, selfIP, peerIP)
		}
		clk.Advance(7 * time.Millisecond)
		// A pong with the right data from the wrong peer does not count.
		stray := ping.Pong(1)
		stray.IP.Src = netip.MustParseAddr("100.64.0.9")
		writeFromPeer(t, f, mustMarshal(t, stray))
		writeFromPeer(t, f, mustMarshal(t, ping.Pong(41641)))
		if o := waitOutcome(t, res); o.err != nil || o.lat != 7*time.Millisecond || o.port != 41641 {
			t.Fatalf("TSMP ping = %+v, want 7ms, port 41641, no error", o)
		}

		res = pingThrough(p, ctx, engine.PingICMP)
		req, err := tsmp.ParseEcho(w.next(t, "echo request"))
		if err != nil || req.Reply || req.IP.Src != selfIP || req.IP.Dst != peerIP {
			t.Fatalf("sent %+v (%v), want an echo request %v -> %v", req, err, selfIP, peerIP)
		}
		clk.Advance(3 * time.Millisecond)
		wrong := req.Response()
		wrong.Data = []byte("not ours")
		writeFromPeer(t, f, mustMarshal(t, wrong))
		writeFromPeer(t, f, mustMarshal(t, req.Response()))
		if o := waitOutcome(t, res); o.err != nil || o.lat != 3*time.Millisecond || o.port != 0 {
			t.Fatalf("ICMP ping = %+v, want 3ms, no error", o)
		}
		if got := ft.toHost(); len(got) != 1 || !bytes.Equal(got[0], mustMarshal(t, wrong)) {
			t.Fatalf("host received %x, want only the echo reply that was not ours", got)
		}
		// A duplicate of our reply, once the ping is done, is ordinary
		// traffic again.
		writeFromPeer(t, f, mustMarshal(t, req.Response()))
		if n := ft.writtenCount(); n != 2 {
			t.Fatalf("host received %d packets, want 2", n)
		}
		if n := p.pending(); n != 0 || p.echoOutstanding() {
			t.Fatalf("%d pings still pending after their replies", n)
		}
	})
}

// With no reply, a ping fails after pingTimeout (fake clock) or at its
// context's end, and leaves nothing pending.
func TestPingNoReply(t *testing.T) {
	for _, typ := range []engine.PingType{engine.PingTSMP, engine.PingICMP} {
		t.Run(string(typ), func(t *testing.T) {
			f, _, p, clk := newTestFilter(t, false)
			w := readLoop(f)
			res := pingThrough(p, context.Background(), typ)
			w.next(t, "ping")
			if n := p.pending(); n != 1 {
				t.Fatalf("%d pings pending, want 1", n)
			}
			clk.Advance(pingTimeout - time.Millisecond)
			select {
			case o := <-res:
				t.Fatalf("ping returned before its timeout: %+v", o)
			case <-time.After(20 * time.Millisecond):
			}
			clk.Advance(time.Millisecond)
			o := waitOutcome(t, res)
			if !errors.Is(o.err, context.DeadlineExceeded) || !errors.Is(o.err, errNoReply) {
				t.Fatalf("ping error = %v, want no reply within %v", o.err, pingTimeout)
			}
			if n := p.pending(); n != 0 || p.echoOutstanding() {
				t.Fatalf("%d pings still pending after the timeout", n)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
			defer cancel()
			o = waitOutcome(t, pingThrough(p, ctx, typ))
			if !errors.Is(o.err, context.DeadlineExceeded) {
				t.Fatalf("ping error = %v, want the context's deadline", o.err)
			}
			if n := p.pending(); n != 0 {
				t.Fatalf("%d pings still pending after the context ended", n)
			}
		})
	}
}

// Close ends a Read blocked in either mode and the pump goroutine, and
// injection after it fails.
func TestFilterClose(t *testing.T) {
	forBothModes(t, func(t *testing.T, pollable bool) {
		f, ft, _, _ := newTestFilter(t, pollable)
		w := readLoop(f)
		ft.waitReads(t, 1)
		f.Close()
		select {
		case err := <-w.errs:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("Read after Close: %v, want os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Read still blocked 5s after Close")
		}
		if err := f.inject([]byte{0x45}); !errors.Is(err, errInjectClosed) {
			t.Fatalf("inject after Close: %v", err)
		}
		if !pollable {
			select {
			case <-f.inj.pump.stopped:
			case <-time.After(5 * time.Second):
				t.Fatal("pump goroutine still running 5s after Close")
			}
		}
	})
}
