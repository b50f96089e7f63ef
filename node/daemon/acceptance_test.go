package daemon_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/node/daemon"
	"weft.dev/weft/node/ipn"
	"weft.dev/weft/node/state"
)

func TestKeyExpiryThenReloginRotatesKey(t *testing.T) {
	c := newControl(t)
	a := newNode(t, "alpha")
	a.up(c)
	before := a.status().Self
	id := int64(before.NodeID)
	if _, err := c.srv.State().Expire(context.Background(), id, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	a.waitState(ipn.NeedsLogin)
	st := a.status()
	if !strings.Contains(strings.Join(st.Health, "\n"), "key has expired") {
		t.Errorf("health after expiry: %q", st.Health)
	}
	a.up(c) // same flags, with the auth key: rotation
	after := a.status().Self
	if after.ID != before.ID {
		t.Errorf("re-login after expiry gave node %s, want %s", after.ID, before.ID)
	}
	if after.PublicKey == before.PublicKey {
		t.Error("node key was not rotated")
	}
	n, ok := c.srv.State().Node(id)
	if !ok || n.NodeKey != after.PublicKey {
		t.Errorf("server node key = %v, want %v", n.NodeKey, after.PublicKey)
	}
}

func TestProfilesTwoServers(t *testing.T) {
	c1, c2 := newControl(t), newControl(t)
	a := newNode(t, "alpha")
	a.up(c1)
	id1 := a.status().Self.ID
	p1, err := a.client().CurrentProfile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a.mustWeft("login", "--login-server", c2.url, "--authkey", c2.key, "--hostname", "alpha", "--timeout", "20s")
	a.waitState(ipn.Running)
	st2 := a.status()
	if p, _ := a.client().CurrentProfile(context.Background()); p.ID == p1.ID || p.ControlURL != c2.url {
		t.Fatalf("login did not add a profile for %s: %+v", c2.url, p)
	}
	list := a.mustWeft("switch", "--list")
	if !strings.Contains(list, c1.url) || !strings.Contains(list, c2.url) || strings.Count(list, "*") != 1 {
		t.Errorf("switch --list:\n%s", list)
	}
	regs1 := len(c1.srv.State().Snapshot().Nodes)

	a.mustWeft("switch", string(p1.ID))
	a.waitState(ipn.Running)
	if got := a.status(); got.Self.ID != id1 || got.Self.PublicKey == st2.Self.PublicKey {
		t.Errorf("after switch back: node %s key %v; want node %s with its own key", got.Self.ID, got.Self.PublicKey, id1)
	}
	if len(c1.srv.State().PendingLogins()) != 0 || len(c1.srv.State().Snapshot().Nodes) != regs1 {
		t.Error("switching back re-authenticated")
	}
	// And back to the second network, still without logging in again.
	var p2 ipn.ProfileID
	ps, _ := a.client().Profiles(context.Background())
	for _, p := range ps {
		if p.ControlURL == c2.url {
			p2 = p.ID
		}
	}
	a.mustWeft("switch", string(p2))
	a.waitState(ipn.Running)
	if got := a.status(); got.Self.ID != st2.Self.ID || got.Self.PublicKey != st2.Self.PublicKey {
		t.Errorf("after switch to the second network: node %s, want %s", got.Self.ID, st2.Self.ID)
	}
	if len(c2.srv.State().PendingLogins()) != 0 || len(c2.srv.State().Snapshot().Nodes) != 1 {
		t.Error("switching to the second network re-authenticated")
	}
}

func TestSwitchUnknownProfileFails(t *testing.T) {
	c := newControl(t)
	a := newNode(t, "alpha")
	a.up(c)
	_, _, err := a.weft("switch", "nosuch")
	if err == nil || !strings.Contains(err.Error(), "no such profile") {
		t.Errorf("switch nosuch: %v", err)
	}
}

func TestPermissions(t *testing.T) {
	c := newControl(t)
	a := newNode(t, "alpha")
	a.up(c)
	a.uid.Store(1000) // alice: not root, not the operator
	if out := a.mustWeft("status"); !strings.Contains(out, "alpha") {
		t.Errorf("non-root status:\n%s", out)
	}
	_, _, err := a.weft("down")
	if err == nil || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), "sudo weft down") {
		t.Fatalf("non-root down: %v", err)
	}
	a.waitState(ipn.Running)

	a.uid.Store(0)
	a.up(c, "--operator", "bob")
	a.uid.Store(1001) // bob, the operator
	a.mustWeft("down")
	a.waitState(ipn.Stopped)
	a.uid.Store(1000)
	if _, _, err := a.weft("up"); err == nil {
		t.Error("alice could bring the node up")
	}
}

func TestTruncatedStateFile(t *testing.T) {
	c := newControl(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "weftd.state")
	a := startNode(t, "alpha", path)
	a.up(c)
	a.stop()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := good[:len(good)/2]
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = daemon.New(context.Background(), daemon.Config{State: path, Socket: filepath.Join(dir, "s"), Tun: daemon.UserspaceNetworking, FakeEngine: true})
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, state.ErrCorrupt) || !strings.Contains(err.Error(), "will not overwrite") {
		t.Fatalf("daemon.New with truncated state: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
		t.Error("the truncated state file was modified")
	}
}

func TestLocalAPIGarbage(t *testing.T) {
	a := newNode(t, "alpha")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", a.sock)
	}}}
	cases := []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/localapi/v0/start", "garbage", 400},
		{"POST", "/localapi/v0/start", `{"Prefs":{"ControlURL":"ftp://x"}}`, 400},
		{"POST", "/localapi/v0/start", `{"Prefs":1}`, 400},
		{"PATCH", "/localapi/v0/prefs", "{", 400},
		{"PATCH", "/localapi/v0/prefs", `{"NetfilterMode":9,"NetfilterModeSet":true}`, 400},
		{"GET", "/localapi/v0/whois?addr=nope", "", 400},
		{"POST", "/localapi/v0/ping?ip=100.64.0.1&type=bogus", "", 400},
		{"GET", "/localapi/v0/watch-ipn-bus?mask=x", "", 400},
		{"GET", "/localapi/v0/nope", "", 404},
		{"GET", "/etc/passwd", "", 404},
		{"DELETE", "/localapi/v0/status", "", 405},
		{"POST", "/localapi/v0/profiles/nosuch", "", 404},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://local"+tc.path, strings.NewReader(tc.body))
		res, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s %s %q: status %d, want %d", tc.method, tc.path, tc.body, res.StatusCode, tc.want)
		}
	}
	// Raw garbage on the socket.
	conn, err := net.Dial("unix", a.sock)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("\x00\x01garbage\r\n\r\n"))
	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := conn.Read(buf)
	conn.Close()
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 400")) {
		t.Errorf("raw garbage answered %q", buf[:n])
	}
	if st := a.status(); st.BackendState == "" {
		t.Error("daemon stopped answering")
	}
}

func TestUnreachableServerTimeoutThenRecovers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	url := "http://" + addr
	a := newNode(t, "alpha")
	_, _, err = a.weft("up", "--login-server", url, "--authkey", "k", "--hostname", "alpha", "--timeout", "1s")
	if err == nil || !strings.Contains(err.Error(), "timeout waiting for weft to enter a Running state") ||
		!strings.Contains(err.Error(), "last error: control: ") || !strings.Contains(err.Error(), addr) {
		t.Fatalf("up to an unreachable server: %v", err)
	}
	// The daemon keeps retrying: once a server appears there, it logs in.
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	c := newControlOn(t, ln)
	if _, _, err := a.weft("up", "--login-server", url, "--authkey", c.key, "--hostname", "alpha", "--timeout", "20s"); err != nil {
		t.Fatal(err)
	}
	a.waitState(ipn.Running)
}

func TestSecondUpMustRestateFlags(t *testing.T) {
	c := newControl(t)
	a := newNode(t, "alpha")
	a.up(c, "--shields-up")
	_, _, err := a.weft("up", "--login-server", c.url, "--hostname", "alpha")
	want := "Error: changing settings via 'weft up' requires mentioning all\nnon-default flags."
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "--shields-up") ||
		!strings.Contains(err.Error(), "\tweft up --hostname=alpha --login-server="+c.url) {
		t.Fatalf("second up: %v", err)
	}
	a.mustWeft("up", "--login-server", c.url, "--hostname", "alpha", "--reset")
	if p, _ := a.client().Prefs(context.Background()); p.ShieldsUp {
		t.Error("--reset kept --shields-up")
	}
}

func TestDownUpAndNotYetSupported(t *testing.T) {
	c := newControl(t)
	a := newNode(t, "alpha")
	a.up(c, "--accept-routes", "--ssh")
	a.mustWeft("down")
	a.waitState(ipn.Stopped)
	out, _, err := a.weft("status")
	if err == nil || !strings.Contains(out, "weft is stopped.") {
		t.Errorf("status when down: %v %q", err, out)
	}
	a.mustWeft("up")
	a.waitState(ipn.Running)
	h := strings.Join(a.status().Health, "\n")
	for _, want := range []string{"--ssh is set but the SSH server is not yet supported", "--accept-routes"} {
		if !strings.Contains(h, want) {
			t.Errorf("health lacks %q:\n%s", want, h)
		}
	}
	_, _, err = a.weft("ping", "beta")
	if err == nil {
		t.Error("ping of an unknown peer succeeded")
	}
	_, _, err = a.weft("ping", a.status().TailscaleIPs[0].String())
	if err == nil || !strings.Contains(err.Error(), "without a data plane") {
		t.Errorf("ping with engine.Fake: %v", err)
	}
	_, _, err = a.weft("netcheck")
	if err == nil || !strings.Contains(err.Error(), "without a data plane") {
		t.Errorf("netcheck with engine.Fake: %v", err)
	}
	for _, sub := range []string{"prefs", "metrics", "hostinfo", "derp-map", "local-creds", "daemon-goroutines"} {
		if out := a.mustWeft("debug", sub); len(out) == 0 {
			t.Errorf("debug %s printed nothing", sub)
		}
	}
	if out := a.mustWeft("debug", "metrics"); !strings.Contains(out, "weftd_backend_state 6") {
		t.Errorf("metrics:\n%.400s", out)
	}
	if out := a.mustWeft("debug", "watch-ipn", "--initial", "--count", "1", "--netmap=false"); !strings.Contains(out, `"State": 6`) {
		t.Errorf("watch-ipn:\n%s", out)
	}
}
