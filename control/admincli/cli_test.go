package admincli

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"weft.dev/weft/control/admin"
	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/internal/clock"
	"weft.dev/weft/wire/key"
)

// t0 is the fake clock's start; tables print it in UTC in these tests.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// server is an admin handler on a unix socket in a temporary state
// directory, over a State with users alice and bob and nodes "laptop"
// (alice, online, advertises 10.1.0.0/24) and "server" (bob).
type server struct {
	dir    string
	st     *state.State
	db     *store.Memory
	clk    *clock.Fake
	laptop *state.Node
	server *state.Node
}

func startServer(t *testing.T) *server {
	t.Helper()
	ctx := context.Background()
	s := &server{dir: t.TempDir(), db: store.NewMemory(), clk: clock.NewFake(t0)}
	t.Cleanup(func() { s.db.Close() })
	st, err := state.New(ctx, state.Config{Store: s.db, Clock: s.clk})
	if err != nil {
		t.Fatal(err)
	}
	s.st = st
	alice, err := st.CreateUser(ctx, "alice", "Alice A", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := st.CreateUser(ctx, "bob", "", "")
	if err != nil {
		t.Fatal(err)
	}
	s.laptop = s.node(t, alice.ID, "laptop", netip.MustParsePrefix("10.1.0.0/24"))
	if s.laptop, err = st.SetOnline(ctx, s.laptop.ID, true); err != nil {
		t.Fatal(err)
	}
	s.server = s.node(t, bob.ID, "server")

	ln, err := admin.ListenUnix(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admin.NewHandler(admin.Config{State: st, Store: s.db})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func (s *server) node(t *testing.T, uid int64, host string, routes ...netip.Prefix) *state.Node {
	t.Helper()
	n, err := s.st.Register(context.Background(), state.RegisterParams{
		MachineKey: key.NewMachine().Public(), NodeKey: key.NewNode().Public(),
		UserID: uid, Hostname: host, AdvertisedRoutes: routes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the CLI against s with tables in UTC and the given environment.
func (s *server) run(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }, loc: time.UTC}
	code := e.run(context.Background(), append([]string{"--state-dir", s.dir}, args...))
	return result{code, out.String(), errb.String()}
}

// ok runs the CLI and fails the test unless it succeeds.
func (s *server) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := s.run(t, nil, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("weft-control %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

func diff(want, got any) string {
	return cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}))
}

var keyRE = regexp.MustCompile(`^weft-auth-[0-9a-f]{12}-[0-9a-f]{48}\n$`)

// TestKeysCreateContract checks what scripts rely on: stdout is the key
// and a newline, nothing else, whatever the flag order.
func TestKeysCreateContract(t *testing.T) {
	s := startServer(t)
	for i, args := range [][]string{
		{"keys", "create", "--user", "alice", "--state-dir", s.dir},
		{"keys", "create", "--user", "alice", "--reusable", "--ephemeral", "--tags", "tag:a,tag:b", "--expiry", "2h", "--state-dir", s.dir},
		{"--state-dir", s.dir, "keys", "--state-dir", s.dir, "create", "--user=bob", "--expiry=90d"},
	} {
		var out, errb bytes.Buffer
		code := Run(context.Background(), args, &out, &errb)
		if code != 0 || !keyRE.MatchString(out.String()) || errb.Len() != 0 {
			t.Fatalf("Run(%q) = %d\nstdout %q (want only a key and a newline)\nstderr %q", args, code, out.String(), errb.String())
		}
		k, err := s.st.CheckPreAuthKey(context.Background(), strings.TrimSpace(out.String()))
		if err != nil {
			t.Fatalf("printed key does not check: %v", err)
		}
		if i == 1 && (!k.Reusable || !k.Ephemeral || !cmp.Equal(k.Tags, []string{"tag:a", "tag:b"}) || !k.Expiration.Equal(t0.Add(2*time.Hour))) {
			t.Errorf("key flags not applied: %+v", k)
		}
	}
	// Run with no --state-dir looks in ./weft-state.
	t.Chdir(filepath.Dir(s.dir))
	if err := os.Rename(s.dir, "weft-state"); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"keys", "create", "--user", "alice"}, &out, &errb); code != 0 || !keyRE.MatchString(out.String()) {
		t.Fatalf("with the default state dir: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestTables(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	if _, err := s.st.AddDNSRecord(ctx, "db.internal", "", "100.64.0.9"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.st.SetApprovedRoutes(ctx, s.laptop.ID, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}); err != nil {
		t.Fatal(err)
	}
	s.clk.Advance(time.Hour)
	if _, err := s.st.Expire(ctx, s.server.ID, s.clk.Now()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"users", "list"}, "" +
			"ID  Name   Display name  Email              Created\n" +
			"1   alice  Alice A       alice@example.com  2026-03-04 05:06:07\n" +
			"2   bob    bob           -                  2026-03-04 05:06:07\n"},
		{[]string{"nodes", "list"}, "" +
			"ID  Name    Hostname  User   Addresses                     Tags  Online  Last seen            Expiry\n" +
			"1   laptop  laptop    alice  100.64.0.1,fd7a:115c:a1e0::1  -     yes     2026-03-04 05:06:07  never\n" +
			"2   server  server    bob    100.64.0.2,fd7a:115c:a1e0::2  -     no      2026-03-04 05:06:07  2026-03-04 06:06:07 (expired)\n"},
		{[]string{"routes", "list"}, "" +
			"ID  Node    Advertised   Approved     Primary\n" +
			"1   laptop  10.1.0.0/24  10.1.0.0/24  10.1.0.0/24\n"},
		{[]string{"dns", "records", "list"}, "" +
			"ID  Name         Type  Value\n" +
			"1   db.internal  A     100.64.0.9\n"},
		{[]string{"nodes", "pending"}, "ID  Hostname  Node key  Waiting since  Expires\n"},
	}
	for _, tc := range tests {
		if got := s.ok(t, tc.args...); got != tc.want {
			t.Errorf("weft-control %s:\n got:\n%s\nwant:\n%s", strings.Join(tc.args, " "), got, tc.want)
		}
	}
}
