package admin

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
)

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	ln, err := ListenUnix(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(SocketPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("socket mode %v, want 0600", mode)
	}
	if _, err := ListenUnix(dir); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Errorf("second ListenUnix on a live socket: %v, want an 'already serving' error", err)
	}
	// A crashed server leaves its socket file behind.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	ln, err = ListenUnix(dir)
	if err != nil {
		t.Fatalf("ListenUnix over a stale socket: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(SocketPath(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left after Close: %v", err)
	}
}

func TestClientUnix(t *testing.T) {
	f := newFixture(t, false)
	dir := t.TempDir()
	c, err := DialUnix(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	_, err = c.Users(ctx)
	want := "cannot reach weft-control at " + SocketPath(dir) + ": is it running? start it with: weft-control --state-dir " + dir
	if err == nil || err.Error() != want {
		t.Fatalf("Users with no server: %v\nwant: %s", err, want)
	}

	ln, err := ListenUnix(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: NewHandler(Config{State: f.st, Store: f.db})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-done
	}()
	users, err := c.Users(ctx)
	if err != nil || len(users) != 2 {
		t.Fatalf("Users = %v, %v; want alice and bob", users, err)
	}
	_, err = c.Node(ctx, "nope")
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Fatalf("Node(nope) = %v, want a 404 *Error", err)
	}
	if _, err := DialUnix("/" + strings.Repeat("d", 200)); err == nil {
		t.Error("DialUnix accepted a socket path longer than a unix socket allows")
	}
}
