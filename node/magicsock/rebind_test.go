package magicsock

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestRebindConnKeepsReaderAndPort: a reader blocked on the socket when it
// is rebound carries on with the new socket, which has the same port, and
// datagrams sent after the rebind reach it.
func TestRebindConnKeepsReaderAndPort(t *testing.T) {
	mn := NewMemNetwork()
	h := mn.Host(netip.MustParseAddr("198.18.1.1"))
	peer, err := mn.Host(netip.MustParseAddr("198.18.1.2")).Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := h.ListenUDP("udp4", 41641)
	if err != nil {
		t.Fatal(err)
	}
	r := newRebindConn(h, "udp4", pc)
	defer r.Close()

	got := make(chan string, 1)
	go func() {
		bufs, sizes, srcs := [][]byte{make([]byte, 100)}, make([]int, 1), make([]netip.AddrPort, 1)
		n, err := r.ReadBatch(bufs, sizes, srcs)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- fmt.Sprintf("%d: %s from %v", n, bufs[0][:sizes[0]], srcs[0])
	}()
	// Give the reader time to block on the old socket (the test still
	// checks the datagram arrives if it had not yet).
	time.Sleep(20 * time.Millisecond)
	la, err := r.rebind()
	if err != nil {
		t.Fatal(err)
	}
	if la.Port() != 41641 || r.LocalAddrPort() != la {
		t.Fatalf("after rebind: local %v (LocalAddrPort %v), want port 41641", la, r.LocalAddrPort())
	}
	if err := peer.WriteBatch([][]byte{[]byte("hello")}, la); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if want := fmt.Sprintf("1: hello from %v", peer.LocalAddrPort()); s != want {
			t.Fatalf("read %q, want %q", s, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reader did not get the datagram sent to the rebound socket")
	}
}

// TestRebindConnDeadlineAndClose: a deadline set before a rebind applies
// to the new socket, and Close ends a blocked reader with an error.
func TestRebindConnDeadlineAndClose(t *testing.T) {
	mn := NewMemNetwork()
	h := mn.Host(netip.MustParseAddr("198.18.1.1"))
	pc, err := h.ListenUDP("udp4", 0)
	if err != nil {
		t.Fatal(err)
	}
	r := newRebindConn(h, "udp4", pc)
	r.SetReadDeadline(time.Unix(1, 0))
	if _, err := r.rebind(); err != nil {
		t.Fatal(err)
	}
	bufs, sizes, srcs := [][]byte{make([]byte, 100)}, make([]int, 1), make([]netip.AddrPort, 1)
	if _, err := r.ReadBatch(bufs, sizes, srcs); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after rebind with a past deadline: %v, want deadline exceeded", err)
	}
	r.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { _, err := r.ReadBatch(bufs, sizes, srcs); done <- err }()
	time.Sleep(20 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read returned no error after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the blocked read")
	}
	if _, err := r.rebind(); err == nil {
		t.Fatal("rebind after Close succeeded")
	}
}
