package daemon_test

import (
	"bytes"
	"context"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"weft.dev/weft/cli"
	"weft.dev/weft/control/server"
	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/node/controlclient"
	"weft.dev/weft/node/daemon"
	"weft.dev/weft/node/ipn"
	"weft.dev/weft/node/localapi"
)

// control is an in-process weft-control on loopback.
type control struct {
	srv  *server.Server
	url  string
	user int64
	key  string // reusable pre-auth key of user alice
}

func newControl(t *testing.T) *control {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newControlOn(t, ln)
}

func newControlOn(t *testing.T, ln net.Listener) *control {
	t.Helper()
	ctx := context.Background()
	url := "http://" + ln.Addr().String()
	s, err := server.New(ctx, server.Config{
		Store: store.NewMemory(), ServerURL: url, DisableDERP: true,
		StateDir: t.TempDir(), BaseDomain: "weft.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close(); s.Close() })
	u, err := s.State().CreateUser(ctx, "alice", "Alice", "alice@weft.test")
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := s.State().CreatePreAuthKey(ctx, state.NewPreAuthKeyParams{UserID: u.ID, Reusable: true})
	if err != nil {
		t.Fatal(err)
	}
	return &control{srv: s, url: url, user: u.ID, key: k}
}

// node is an in-process weftd (engine.Fake) with a LocalAPI socket.
type node struct {
	t         *testing.T
	name      string
	statePath string
	sock      string
	uid       atomic.Int64 // the uid the LocalAPI sees for CLI calls
	d         *daemon.Daemon
	cancel    context.CancelFunc
	done      chan struct{}
}

// users maps the names tests use for --operator to uids.
var users = map[string]int{"root": 0, "alice": 1000, "bob": 1001}

func lookupUID(name string) (int, error) {
	if uid, ok := users[name]; ok {
		return uid, nil
	}
	return -1, os.ErrNotExist
}

func newNode(t *testing.T, name string) *node {
	t.Helper()
	return startNode(t, name, filepath.Join(t.TempDir(), "weftd.state"))
}

func startNode(t *testing.T, name, statePath string) *node {
	t.Helper()
	dir, err := os.MkdirTemp("", "wd") // unix socket paths must be short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &node{t: t, name: name, statePath: statePath, sock: filepath.Join(dir, "s")}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *node) start() {
	n.t.Helper()
	daemonUID := 0
	d, err := daemon.New(context.Background(), daemon.Config{
		State: n.statePath, Socket: n.sock, Tun: daemon.UserspaceNetworking, Hostname: n.name, FakeEngine: true,
		Version: "1.0.0-test",
		PeerCreds: func(net.Conn) (localapi.Creds, error) {
			return localapi.Creds{Known: true, UID: int(n.uid.Load())}, nil
		},
		LookupUID: lookupUID,
		DaemonUID: &daemonUID,
		ControlOptions: func(o *controlclient.Options) {
			o.MaxBackoff = 300 * time.Millisecond
		},
	})
	if err != nil {
		n.t.Fatalf("start weftd %s: %v", n.name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.d, n.cancel, n.done = d, cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		d.Run(ctx)
	}()
}

func (n *node) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cancel = nil
}

func (n *node) restart() {
	n.stop()
	n.start()
}

// weft runs the CLI against this node as the current uid.
func (n *node) weft(args ...string) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = cli.Run(ctx, args, cli.Env{
		Stdout: &o, Stderr: &e, DefaultSocket: n.sock, UID: int(n.uid.Load()), Version: "1.0.0-test",
	})
	return o.String(), e.String(), err
}

func (n *node) mustWeft(args ...string) string {
	n.t.Helper()
	o, e, err := n.weft(args...)
	if err != nil {
		n.t.Fatalf("weft %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, o, e)
	}
	return o
}

func (n *node) client() *localapi.Client { return &localapi.Client{Socket: n.sock} }

func (n *node) status() *ipn.Status {
	n.t.Helper()
	st, err := n.client().Status(context.Background())
	if err != nil {
		n.t.Fatalf("status: %v", err)
	}
	return st
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (n *node) waitState(want ipn.State) {
	n.t.Helper()
	waitFor(n.t, n.name+" to be "+want.String(), func() bool {
		st, err := n.client().StatusWithoutPeers(context.Background())
		return err == nil && st.BackendState == want.String()
	})
}

// up logs the node in to c with the pre-auth key.
func (n *node) up(c *control, extra ...string) {
	n.t.Helper()
	args := append([]string{"up", "--login-server", c.url, "--authkey", c.key, "--hostname", n.name, "--timeout", "20s"}, extra...)
	n.mustWeft(args...)
	n.waitState(ipn.Running)
}
