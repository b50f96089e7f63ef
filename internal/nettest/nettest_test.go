package nettest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	calls := 0
	err := Poll(2*time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Poll = %v after %d calls, want nil after 3", err, calls)
	}
	start := time.Now()
	err = Poll(100*time.Millisecond, func() error { return errors.New("never") })
	if err == nil || !strings.Contains(err.Error(), "never") {
		t.Fatalf("Poll = %v, want the last error", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Poll overran its 100ms deadline: %v", d)
	}
}

func TestPingBetweenNamespaces(t *testing.T) {
	RequireRoot(t)
	RequireTools(t, "ping")
	lab := NewLab(t)
	seg := lab.NewSegment()
	a, b := lab.NewNode("a", seg), lab.NewNode("b", seg)
	if !seg.Prefix.Contains(a.Addr) || !netip.MustParsePrefix("198.18.0.0/15").Contains(a.Addr) {
		t.Fatalf("address %v outside %v or 198.18.0.0/15", a.Addr, seg.Prefix)
	}
	WaitFor(t, 10*time.Second, func() error { return a.Ping(b.Addr) })
	if err := b.Ping(a.Addr); err != nil {
		t.Fatalf("ping b -> a: %v", err)
	}
	// Loopback is up in every namespace.
	if err := a.Ping(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Fatalf("ping loopback: %v", err)
	}
	out, err := a.Output("ip", "-o", "addr", "show")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "inet6 fe80") {
		t.Errorf("eth0 has an IPv6 link-local address; want IPv4 only:\n%s", out)
	}
}

// udpEcho serves UDP echo on pc until it is closed.
func udpEcho(pc net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		// Reply with the source address the server saw.
		pc.WriteTo(append(buf[:n:n], " from "+from.String()...), from)
	}
}

// udpRoundTrip sends msg from pc to dst and returns the reply.
func udpRoundTrip(pc net.PacketConn, dst netip.AddrPort, msg string) (string, error) {
	if _, err := pc.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(dst)); err != nil {
		return "", err
	}
	pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 1500)
	n, _, err := pc.ReadFrom(buf)
	return string(buf[:n]), err
}

func TestBlockUDP(t *testing.T) {
	RequireRoot(t)
	lab := NewLab(t)
	seg := lab.NewSegment()
	a, b := lab.NewNode("a", seg), lab.NewNode("b", seg)

	srv, err := b.ListenPacket("udp4", b.Addr.String()+":7")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go udpEcho(srv)
	cli, err := a.ListenPacket("udp4", a.Addr.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	dst := netip.AddrPortFrom(b.Addr, 7)
	echo := func() error { _, err := udpRoundTrip(cli, dst, "ping"); return err }

	WaitFor(t, 10*time.Second, echo)
	a.BlockUDP(b.Addr)
	for i := range 3 {
		if err := echo(); err == nil {
			t.Fatalf("UDP echo %d answered while blocked", i)
		}
	}
	// Only UDP is blocked: TCP still connects.
	ln, err := b.Listen("tcp4", b.Addr.String()+":8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := a.DialContext(ctx, "tcp4", b.Addr.String()+":8080")
	if err != nil {
		t.Fatalf("TCP while UDP blocked: %v", err)
	}
	c.Close()

	a.UnblockUDP(b.Addr)
	WaitFor(t, 5*time.Second, echo)
	// Both directions are idempotent.
	a.UnblockUDP(b.Addr)
	a.BlockUDP(b.Addr)
	a.BlockUDP(b.Addr)
	if err := echo(); err == nil {
		t.Fatal("UDP echo answered while blocked again")
	}
	a.UnblockUDP(b.Addr)
	WaitFor(t, 5*time.Second, echo)
}

func TestNAT(t *testing.T) {
	RequireRoot(t)
	lab := NewLab(t)
	outer := lab.NewSegment()
	server := lab.NewNode("server", outer)
	router, inner := lab.NewNAT("nat", outer)
	client := lab.NewNode("client", inner)
	if client.Segment.Gateway != inner.Gateway || !inner.Gateway.IsValid() {
		t.Fatalf("inner gateway = %v", inner.Gateway)
	}

	srv, err := server.ListenPacket("udp4", server.Addr.String()+":9")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go udpEcho(srv)
	cli, err := client.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var reply string
	WaitFor(t, 10*time.Second, func() error {
		reply, err = udpRoundTrip(cli, netip.AddrPortFrom(server.Addr, 9), "hi")
		return err
	})
	if !strings.Contains(reply, " from "+router.Addr.String()+":") {
		t.Fatalf("server saw %q, want the router's outer address %v (masquerade)", reply, router.Addr)
	}
}

func TestProcessesLogsAndCleanup(t *testing.T) {
	RequireRoot(t)
	var (
		namespaces []string
		pid        int
		logPath    string
	)
	t.Run("lab", func(t *testing.T) {
		lab := NewLab(t)
		seg := lab.NewSegment()
		n := lab.NewNode("n1", seg)
		p := n.Start(Cmd{
			Name: "shell",
			Args: []string{"sh", "-c", `echo "out $WEFT_TEST_VAR"; echo err >&2; sleep 600 & wait`},
			Env:  []string{"WEFT_TEST_VAR=hello"},
		})
		pid, logPath = p.Pid(), p.LogPath
		WaitFor(t, 5*time.Second, func() error {
			if log := p.Log(); !strings.Contains(log, "out hello") || !strings.Contains(log, "err") {
				return errors.New("log so far: " + log)
			}
			return nil
		})
		if filepath.Dir(logPath) != lab.Dir() {
			t.Errorf("log %s not in the lab dir %s", logPath, lab.Dir())
		}

		out, err := n.Output("sh", "-c", "echo stdout; echo stderr >&2")
		if err != nil || out != "stdout\n" {
			t.Errorf("Output = %q, %v; want only stdout", out, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := n.ExecContext(ctx, "sleep", "30"); err == nil || time.Since(start) > 5*time.Second {
			t.Errorf("ExecContext with 200ms deadline: err=%v after %v", err, time.Since(start))
		}
		lab.mu.Lock()
		namespaces = append(namespaces, lab.namespaces...)
		lab.mu.Unlock()
		if len(namespaces) != 2 {
			t.Fatalf("namespaces %v, want switch + node", namespaces)
		}
		for _, ns := range namespaces {
			if !strings.HasPrefix(ns, NamePrefix) {
				t.Errorf("namespace %q lacks prefix %q", ns, NamePrefix)
			}
		}
	})
	// The subtest's cleanups have run: nothing of it may remain.
	for _, ns := range namespaces {
		for _, p := range []string{"/run/netns/" + ns, "/etc/netns/" + ns, markerDir + "/" + ns} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s still exists after cleanup (err %v)", p, err)
			}
		}
	}
	if live := liveGroupMembers(pid); len(live) > 0 {
		t.Errorf("process group %d still has live members %v after cleanup", pid, live)
	}
}

// liveGroupMembers lists the processes of group pgid that are not zombies
// (killed orphans stay zombies until PID 1 gets round to reaping them).
func liveGroupMembers(pgid int) []string {
	var live []string
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may contain spaces.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(b[i+1:]))
		if len(fields) > 2 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			live = append(live, string(b[:i+1]))
		}
	}
	return live
}
