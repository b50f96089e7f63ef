package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/internal/clock"
	"weft.dev/weft/wire/key"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// fixture is an admin handler over a real State on a memory store, with
// users alice and bob and two nodes: "laptop" (alice, advertises
// 10.1.0.0/24, online) and "server" (bob).
type fixture struct {
	st     *state.State
	db     *store.Memory
	clk    *clock.Fake
	srv    *httptest.Server
	laptop *state.Node
	server *state.Node
}

func newFixture(t *testing.T, requireKey bool) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: store.NewMemory(), clk: clock.NewFake(t0)}
	t.Cleanup(func() { f.db.Close() })
	st, err := state.New(ctx, state.Config{Store: f.db, Clock: f.clk})
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	alice := f.mustUser(t, "alice")
	bob := f.mustUser(t, "bob")
	f.laptop = f.mustNode(t, alice.ID, "laptop", netip.MustParsePrefix("10.1.0.0/24"))
	if f.laptop, err = st.SetOnline(ctx, f.laptop.ID, true); err != nil {
		t.Fatal(err)
	}
	f.server = f.mustNode(t, bob.ID, "server")
	f.srv = httptest.NewServer(NewHandler(Config{State: st, Store: f.db, RequireAPIKey: requireKey}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) mustUser(t *testing.T, name string) store.User {
	t.Helper()
	u, err := f.st.CreateUser(context.Background(), name, "", "")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (f *fixture) mustNode(t *testing.T, uid int64, host string, routes ...netip.Prefix) *state.Node {
	t.Helper()
	n, err := f.st.Register(context.Background(), state.RegisterParams{
		MachineKey: key.NewMachine().Public(), NodeKey: key.NewNode().Public(),
		UserID: uid, Hostname: host, AdvertisedRoutes: routes,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// do sends a request; hdr holds header name/value pairs.
func (f *fixture) do(t *testing.T, method, path, body string, hdr ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// call sends a request, checks the status and decodes the answer into out
// (nil: none).
func (f *fixture) call(t *testing.T, method, path, body string, want int, out any) {
	t.Helper()
	code, got := f.do(t, method, path, body)
	if code != want {
		t.Fatalf("%s %s %s: status %d, want %d; body: %s", method, path, body, code, want, got)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(got), out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, got, err)
		}
	}
}

// errCase is one request that must fail.
type errCase struct {
	name         string
	method, path string
	body         string
	status       int
	contains     string // in the error message
}

func runErrCases(t *testing.T, f *fixture, cases []errCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.do(t, tc.method, tc.path, tc.body)
			var e ErrorResponse
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %s: body %q is not a JSON error", tc.method, tc.path, body)
			}
			if code != tc.status || !strings.Contains(e.Error, tc.contains) {
				t.Errorf("%s %s %s:\n got %d %q\nwant %d containing %q", tc.method, tc.path, tc.body, code, e.Error, tc.status, tc.contains)
			}
		})
	}
}

// diff compares whole values, treating netip types as comparable.
func diff(want, got any) string {
	return cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}))
}
