package wgengine

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/netip"
	"testing"
	"time"

	"weft.dev/weft/node/netstack"
)

// TestNetstackGSOAndGRO wires two userspace stacks back to back through
// their tun.Device sides, as wireguard-go would (Read batches from one,
// Write them to the other), with TCP segmentation offload cut by the TUN
// splitter and GRO on the way in, and echoes 4 MiB over TCP: every packet
// that leaves is within the MTU and the bytes come back intact (pure ACKs,
// which gVisor marks as GSO too, must leave with complete checksums).
func TestNetstackGSOAndGRO(t *testing.T) {
	for _, tc := range []struct{ a, b, dst string }{
		{"100.64.0.1/32", "100.64.0.2/32", "100.64.0.2:7"},
		{"fd7a:115c:a1e0::1/128", "fd7a:115c:a1e0::2/128", "[fd7a:115c:a1e0::2]:7"},
	} {
		t.Run(tc.dst, func(t *testing.T) { testNetstackGSOAndGRO(t, tc.a, tc.b, tc.dst) })
	}
}

func testNetstackGSOAndGRO(t *testing.T, aPrefix, bPrefix, dst string) {
	mk := func(prefix string) *netstack.Stack {
		st, err := netstack.New(netstack.Options{MTU: DefaultMTU, SplitGSO: splitVirtio})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetAddresses([]netip.Prefix{netip.MustParsePrefix(prefix)}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a, b := mk(aPrefix), mk(bPrefix)
	pump := func(from, to *netstack.Stack) {
		bufs := make([][]byte, 64)
		for i := range bufs {
			bufs[i] = make([]byte, 16+DefaultMTU+100)
		}
		sizes := make([]int, len(bufs))
		for {
			n, err := from.Read(bufs, sizes, 16)
			if err != nil {
				return
			}
			out := make([][]byte, n)
			for i := range n {
				if sizes[i] > DefaultMTU {
					t.Errorf("packet of %d bytes leaves a %d-byte MTU stack", sizes[i], DefaultMTU)
				}
				out[i] = bufs[i][:16+sizes[i]]
			}
			to.Write(out, 16)
		}
	}
	go pump(a, b)
	go pump(b, a)

	ln, err := b.ListenTCP(netip.MustParseAddrPort(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := a.DialContext(ctx, "tcp", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	want := make([]byte, 4<<20)
	rand.Read(want)
	go c.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echoed bytes differ")
	}
}
