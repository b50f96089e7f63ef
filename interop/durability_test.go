package interop

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"weft.dev/weft/control/controltest"
	"weft.dev/weft/wire/ctrl"
)

// TestControlKill9DuringRegistrations kills weft-control with SIGKILL in
// the middle of a burst of registrations (real ts2021 clients on loopback;
// no root needed), restarts it on the same state, and checks that every
// registration the server acknowledged is still there with the addresses
// the node was given, and that its client gets back in without
// re-authenticating.
func TestControlKill9DuringRegistrations(t *testing.T) {
	bin := weft.Bins(t).Require(t, "weft-control")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	url := "http://" + addr
	args := []string{"--listen", addr, "--server-url", url, "--state-dir", filepath.Join(dir, "state"),
		"--disable-derp", "--log-level", "warn"}
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			res, err := http.Get(url + "/health")
			if err == nil {
				res.Body.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("weft-control did not come up: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	admin := func(a ...string) string {
		out, err := exec.Command(bin, append([]string{"--state-dir", filepath.Join(dir, "state")}, a...)...).Output()
		if err != nil {
			t.Fatalf("weft-control %v: %v", a, err)
		}
		return strings.TrimSpace(string(out))
	}
	srv := start()
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	admin("users", "create", "burst")
	key := admin("keys", "create", "--user", "burst", "--reusable")

	type result struct {
		c     *controltest.Client
		acked bool
		addrs []netip.Prefix
	}
	const n = 60
	results := make([]*result, n)
	var acked atomic.Int64
	var wg sync.WaitGroup
	killed := make(chan struct{})
	go func() {
		// Kill mid-burst, once a third of the registrations are acknowledged.
		for acked.Load() < n/3 {
			time.Sleep(time.Millisecond)
		}
		srv.Process.Signal(syscall.SIGKILL)
		srv.Wait()
		close(killed)
	}()
	sem := make(chan struct{}, 8)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := &result{}
			results[i] = r
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := controltest.Dial(ctx, url, nil)
			if err != nil {
				return // refused after the kill: never acknowledged
			}
			r.c = c
			hi := &ctrl.Hostinfo{Hostname: "burst-" + strconv.Itoa(i)}
			res, err := c.Register(ctx, ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: key}, Hostinfo: hi})
			if err != nil || res.Error != "" || !res.MachineAuthorized {
				return
			}
			r.acked = true
			acked.Add(1)
			s, err := c.Stream(ctx, ctrl.MapRequest{Hostinfo: hi})
			if err != nil {
				return
			}
			defer s.Close()
			if _, err := s.Next(); err == nil {
				r.addrs = s.Self().Addresses
			}
		}()
	}
	wg.Wait()
	<-killed
	srv = start()

	got, withAddrs := 0, 0
	for i, r := range results {
		if !r.acked {
			continue
		}
		got++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := r.c.Connect(ctx, nil); err != nil {
			cancel()
			t.Fatalf("node %d: reconnect: %v", i, err)
		}
		hi := &ctrl.Hostinfo{Hostname: "burst-" + strconv.Itoa(i)}
		res, err := r.c.Register(ctx, ctrl.RegisterRequest{Hostinfo: hi})
		if err != nil || res.Error != "" || res.AuthURL != "" || !res.MachineAuthorized {
			cancel()
			t.Fatalf("node %d was acknowledged before the kill but is not known after it: %+v %v", i, res, err)
		}
		s, err := r.c.Stream(ctx, ctrl.MapRequest{Hostinfo: hi})
		if err != nil {
			cancel()
			t.Fatalf("node %d: stream after restart: %v", i, err)
		}
		if _, err := s.Next(); err != nil {
			t.Fatalf("node %d: first frame after restart: %v", i, err)
		}
		if r.addrs != nil {
			withAddrs++
			if fmt.Sprint(s.Self().Addresses) != fmt.Sprint(r.addrs) {
				t.Errorf("node %d: addresses %v before the kill, %v after", i, r.addrs, s.Self().Addresses)
			}
		}
		s.Close()
		r.c.Close()
		cancel()
	}
	if got < n/3 || got == n {
		t.Fatalf("%d registrations acknowledged: the kill did not land mid-burst", got)
	}
	t.Logf("%d of %d registrations acknowledged before kill -9, all present after restart (%d with addresses checked)", got, n, withAddrs)
}
