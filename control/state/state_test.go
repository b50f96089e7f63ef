package state

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"weft.dev/weft/control/store"
	"weft.dev/weft/internal/clock"
	"weft.dev/weft/wire/key"
)

func newTestState(t *testing.T, clk clock.Clock) (*State, int64) {
	t.Helper()
	st, err := New(context.Background(), Config{Store: store.NewMemory(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.CreateUser(context.Background(), "alice", "", "")
	if err != nil {
		t.Fatal(err)
	}
	return st, u.ID
}

func register(t *testing.T, st *State, user int64, host string) *Node {
	t.Helper()
	n, err := st.Register(context.Background(), RegisterParams{
		MachineKey: key.NewMachine().Public(), NodeKey: key.NewNode().Public(), UserID: user, Hostname: host,
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSanitizeLabel(t *testing.T) {
	for in, want := range map[string]string{
		"My Laptop":             "my-laptop",
		"host.example.com":      "host",
		"--x--":                 "x",
		"":                      "node",
		"Ünïcode_Box":           "ncode-box",
		strings.Repeat("a", 70): strings.Repeat("a", 63),
	} {
		if got := SanitizeLabel(in); got != want {
			t.Errorf("SanitizeLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUniqueNamesAndRename(t *testing.T) {
	st, u := newTestState(t, nil)
	a := register(t, st, u, "box")
	b := register(t, st, u, "box")
	c := register(t, st, u, "Box")
	if a.GivenName != "box" || b.GivenName != "box-1" || c.GivenName != "box-2" {
		t.Fatalf("names = %s %s %s", a.GivenName, b.GivenName, c.GivenName)
	}
	ctx := context.Background()
	if _, err := st.Rename(ctx, b.ID, "box"); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("rename onto a taken name: %v", err)
	}
	if _, err := st.Rename(ctx, b.ID, "Bad Name"); err == nil || !strings.Contains(err.Error(), "bad-name") {
		t.Fatalf("rename to an invalid label: %v", err)
	}
	if _, err := st.Rename(ctx, a.ID, "alpha"); err != nil {
		t.Fatal(err)
	}
	if d := register(t, st, u, "box"); d.GivenName != "box" {
		t.Fatalf("freed name not reused: %s", d.GivenName)
	}
}

func TestSetIP(t *testing.T) {
	st, u := newTestState(t, nil)
	ctx := context.Background()
	a := register(t, st, u, "a")
	b := register(t, st, u, "b")
	if _, err := st.SetIP(ctx, a.ID, b.IPv4); err == nil {
		t.Fatal("moved onto another node's address")
	}
	if _, err := st.SetIP(ctx, a.ID, netip.MustParseAddr("10.0.0.1")); err == nil {
		t.Fatal("moved outside the prefix")
	}
	n, err := st.SetIP(ctx, a.ID, netip.MustParseAddr("100.64.50.50"))
	if err != nil || n.IPv4.String() != "100.64.50.50" {
		t.Fatalf("SetIP: %v %v", n, err)
	}
	// The old address is free again; the new one is not.
	c := register(t, st, u, "c")
	if c.IPv4 == netip.MustParseAddr("100.64.50.50") {
		t.Fatal("pinned address handed out again")
	}
	if _, err := st.SetIP(ctx, b.ID, a.IPv4); err != nil {
		t.Fatalf("old address not released: %v", err)
	}
}

func TestConcurrentRegistrationsGetDistinctAddresses(t *testing.T) {
	st, u := newTestState(t, nil)
	var mu sync.Mutex
	seen := map[netip.Addr]bool{}
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := register(t, st, u, "n")
			mu.Lock()
			defer mu.Unlock()
			if seen[n.IPv4] || seen[n.IPv6] {
				t.Errorf("duplicate address %s/%s", n.IPv4, n.IPv6)
			}
			seen[n.IPv4], seen[n.IPv6] = true, true
		}()
	}
	wg.Wait()
}

func TestAddressesSurviveRestart(t *testing.T) {
	ctx := context.Background()
	db := store.NewMemory()
	st, err := New(ctx, Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := st.CreateUser(ctx, "u", "", "")
	a := register(t, st, u.ID, "a")
	st2, err := New(ctx, Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := st2.NodeByKey(a.NodeKey)
	if !ok || got.IPv4 != a.IPv4 || got.IPv6 != a.IPv6 || got.GivenName != a.GivenName {
		t.Fatalf("after reload: %+v", got)
	}
	if b := register(t, st2, u.ID, "b"); b.IPv4 == a.IPv4 {
		t.Fatal("reloaded address handed out again")
	}
}

func TestEphemeralCollectedAfterInactivity(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	st, u := newTestState(t, clk)
	ctx := context.Background()
	eph, err := st.Register(ctx, RegisterParams{MachineKey: key.NewMachine().Public(), NodeKey: key.NewNode().Public(), UserID: u, Hostname: "e", Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	keep := register(t, st, u, "k")
	st.SetOnline(ctx, eph.ID, true)
	clk.Advance(time.Hour)
	if n := st.ExpireInactiveEphemeral(ctx, 30*time.Minute); n != 0 {
		t.Fatalf("collected an online ephemeral node")
	}
	st.SetOnline(ctx, eph.ID, false)
	clk.Advance(29 * time.Minute)
	if n := st.ExpireInactiveEphemeral(ctx, 30*time.Minute); n != 0 {
		t.Fatalf("collected before the timeout")
	}
	clk.Advance(2 * time.Minute)
	if n := st.ExpireInactiveEphemeral(ctx, 30*time.Minute); n != 1 {
		t.Fatalf("collected %d, want 1", n)
	}
	if _, ok := st.Node(eph.ID); ok {
		t.Fatal("ephemeral node still there")
	}
	if _, ok := st.Node(keep.ID); !ok {
		t.Fatal("regular node collected")
	}
}

func TestNodeKeyOfAnotherMachineRefused(t *testing.T) {
	st, u := newTestState(t, nil)
	a := register(t, st, u, "a")
	_, err := st.Register(context.Background(), RegisterParams{MachineKey: key.NewMachine().Public(), NodeKey: a.NodeKey, UserID: u})
	if err == nil || !strings.Contains(err.Error(), "another machine") {
		t.Fatalf("err = %v", err)
	}
}
