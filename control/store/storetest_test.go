package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/wire/key"
)

// This file is the conformance suite every Store implementation runs
// (memory_test.go, sqlite_test.go). It pins down behaviour the interface
// leaves implicit: canonical values (UTC times, nil for empty), ID order,
// which errors wrap ErrConflict or ErrNotFound.

// opener returns a fresh, empty store closed by t's cleanup.
type opener func(t testing.TB) Store

func runConformance(t *testing.T, open opener) {
	tests := []struct {
		name string
		f    func(*testing.T, Store)
	}{
		{"Users", testUsers},
		{"NodeRoundTrip", testNodeRoundTrip},
		{"NodeConflicts", testNodeConflicts},
		{"IDsNotReused", testIDsNotReused},
		{"DeleteUserWithNodes", testDeleteUserWithNodes},
		{"PreAuthKeys", testPreAuthKeys},
		{"SingleUseKey", testSingleUseKey},
		{"SingleUseKeyRace", testSingleUseKeyRace},
		{"ConcurrentCreates", testConcurrentCreates},
		{"APIKeys", testAPIKeys},
		{"DNSRecords", testDNSRecords},
		{"Policies", testPolicies},
		{"Settings", testSettings},
		{"NoAliasing", testNoAliasing},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.f(t, open(t))
		})
	}
}

// cmpOpts compares the key and address types, whose fields are unexported.
func cmpOpts() cmp.Options {
	return cmp.Options{
		cmp.Comparer(func(a, b key.NodePublic) bool { return a == b }),
		cmp.Comparer(func(a, b key.MachinePublic) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
	}
}

func wantEqual[T any](t testing.TB, what string, got, want T) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpOpts()); diff != "" {
		t.Fatalf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testTime is a fixed time in a non-UTC zone with nanoseconds, to check
// that stores keep the instant exactly.
func testTime(day int) time.Time {
	return time.Date(2026, 3, day, 12, 30, 45, 123456789, time.FixedZone("UTC+1", 3600))
}

// testNode returns a node whose unique fields all derive from i.
func testNode(i int, userID int64) Node {
	var nk, mk [32]byte
	binary.BigEndian.PutUint64(nk[:], uint64(i)+1)
	mk[0] = 0xaa
	binary.BigEndian.PutUint64(mk[1:], uint64(i)+1)
	v6 := netip.MustParseAddr("fd7a:115c:a1e0::").As16()
	binary.BigEndian.PutUint32(v6[12:], uint32(i))
	return Node{
		MachineKey: key.MachinePublicFromRaw32(mk),
		NodeKey:    key.NodePublicFromRaw32(nk),
		UserID:     userID,
		Hostname:   fmt.Sprintf("host-%d", i),
		GivenName:  fmt.Sprintf("node-%d", i),
		IPv4:       netip.AddrFrom4([4]byte{100, 64 + byte(i>>16&0x3f), byte(i >> 8), byte(i)}),
		IPv6:       netip.AddrFrom16(v6),
		CreatedAt:  testTime(1),
	}
}

// fullNode is testNode with every optional field set.
func fullNode(i int, userID int64) Node {
	n := testNode(i, userID)
	n.Hostinfo = json.RawMessage(`{"OS":"linux","Hostname":"h"}`)
	n.Tags = []string{"tag:server", "tag:prod"}
	n.AuthKeyID = 7
	n.Ephemeral = true
	n.Expiry = testTime(20)
	n.AdvertisedRoutes = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::/64")}
	n.ApprovedRoutes = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}
	n.LastSeen = testTime(2)
	return n
}

func createUser(t testing.TB, s Store, name string) User {
	t.Helper()
	u := User{Name: name, DisplayName: strings.ToUpper(name), Email: name + "@example.com", CreatedAt: testTime(1)}
	must(t, s.CreateUser(context.Background(), &u))
	return u
}

func createNode(t testing.TB, s Store, n Node) Node {
	t.Helper()
	must(t, s.CreateNode(context.Background(), &n, 0))
	if n.ID == 0 {
		t.Fatal("CreateNode left ID zero")
	}
	return n
}

func listNodes(t testing.TB, s Store) []Node {
	t.Helper()
	ns, err := s.ListNodes(context.Background())
	must(t, err)
	return ns
}

func testUsers(t *testing.T, s Store) {
	ctx := context.Background()
	users, err := s.ListUsers(ctx)
	must(t, err)
	wantEqual(t, "empty list", users, nil)

	alice := createUser(t, s, "alice")
	bob := createUser(t, s, "bob")
	if alice.ID == 0 || bob.ID <= alice.ID {
		t.Fatalf("IDs alice=%d bob=%d, want increasing and non-zero", alice.ID, bob.ID)
	}
	users, err = s.ListUsers(ctx)
	must(t, err)
	wantEqual(t, "users", users, []User{alice, bob})

	dup := User{Name: "alice"}
	err = s.CreateUser(ctx, &dup)
	wantErr(t, "duplicate name", err, ErrConflict)
	if !strings.Contains(err.Error(), "user name") || !strings.Contains(err.Error(), `"alice"`) {
		t.Errorf("conflict error %q does not say what conflicted", err)
	}
	if dup.ID != 0 {
		t.Errorf("failed create set ID %d", dup.ID)
	}

	must(t, s.DeleteUser(ctx, bob.ID))
	wantErr(t, "delete twice", s.DeleteUser(ctx, bob.ID), ErrNotFound)
	carol := createUser(t, s, "carol")
	if carol.ID <= bob.ID {
		t.Errorf("carol got ID %d after deleting bob's %d: IDs reused", carol.ID, bob.ID)
	}
	users, err = s.ListUsers(ctx)
	must(t, err)
	wantEqual(t, "users after delete", users, []User{alice, carol})
}

func testNodeRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	u := createUser(t, s, "alice")
	n := createNode(t, s, fullNode(1, u.ID))
	wantEqual(t, "nodes", listNodes(t, s), []Node{n})

	// A node with only the required fields, twice: absent addresses and
	// names do not collide.
	var minimal []Node
	for i := 2; i <= 3; i++ {
		m := testNode(i, u.ID)
		m.GivenName, m.IPv6 = "", netip.Addr{}
		minimal = append(minimal, createNode(t, s, m))
	}
	wantEqual(t, "nodes", listNodes(t, s), append([]Node{n}, minimal...))

	up := n
	up.NodeKey = testNode(100, 0).NodeKey
	up.Hostname = "renamed"
	up.GivenName = "renamed"
	up.IPv4 = netip.MustParseAddr("100.100.1.1")
	up.IPv6 = netip.Addr{}
	up.Hostinfo = nil
	up.Tags = []string{"tag:other"}
	up.Ephemeral = false
	up.Expiry = time.Time{}
	up.AdvertisedRoutes = nil
	up.ApprovedRoutes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}
	up.LastSeen = testTime(3)
	must(t, s.UpdateNode(ctx, &up, 0))
	wantEqual(t, "nodes after update", listNodes(t, s), append([]Node{up}, minimal...))

	missing := testNode(50, u.ID)
	missing.ID = 9999
	wantErr(t, "update missing node", s.UpdateNode(ctx, &missing, 0), ErrNotFound)

	must(t, s.DeleteNode(ctx, up.ID))
	wantErr(t, "delete twice", s.DeleteNode(ctx, up.ID), ErrNotFound)
	wantEqual(t, "nodes after delete", listNodes(t, s), minimal)
}

func testNodeConflicts(t *testing.T, s Store) {
	ctx := context.Background()
	u := createUser(t, s, "alice")
	base := createNode(t, s, testNode(1, u.ID))
	other := createNode(t, s, testNode(2, u.ID))

	tests := []struct {
		name  string
		label string // what the error must name
		clash func(n *Node)
	}{
		{"NodeKey", "node key", func(n *Node) { n.NodeKey = base.NodeKey }},
		{"GivenName", "given name", func(n *Node) { n.GivenName = base.GivenName }},
		{"IPv4", "IPv4 address", func(n *Node) { n.IPv4 = base.IPv4 }},
		{"IPv6", "IPv6 address", func(n *Node) { n.IPv6 = base.IPv6 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := testNode(3, u.ID)
			tt.clash(&n)
			err := s.CreateNode(ctx, &n, 0)
			wantErr(t, "create", err, ErrConflict)
			if !strings.Contains(err.Error(), tt.label) {
				t.Errorf("error %q does not name %q", err, tt.label)
			}
			if n.ID != 0 {
				t.Errorf("failed create set ID %d", n.ID)
			}

			up := other
			tt.clash(&up)
			wantErr(t, "update", s.UpdateNode(ctx, &up, 0), ErrConflict)
		})
	}
	wantEqual(t, "nodes after conflicts", listNodes(t, s), []Node{base, other})

	orphan := testNode(4, 9999)
	wantErr(t, "create with unknown user", s.CreateNode(ctx, &orphan, 0), ErrNotFound)
	moved := other
	moved.UserID = 9999
	wantErr(t, "update to unknown user", s.UpdateNode(ctx, &moved, 0), ErrNotFound)
	wantEqual(t, "nodes after bad user", listNodes(t, s), []Node{base, other})
}

func testIDsNotReused(t *testing.T, s Store) {
	ctx := context.Background()
	// Deleting the highest ID is the case plain SQLite rowids get wrong.
	var users []User
	for _, name := range []string{"a", "b", "c"} {
		users = append(users, createUser(t, s, name))
	}
	must(t, s.DeleteUser(ctx, users[2].ID))
	if u := createUser(t, s, "d"); u.ID <= users[2].ID {
		t.Errorf("user ID %d reused (deleted %d)", u.ID, users[2].ID)
	}

	var nodes []Node
	for i := range 3 {
		nodes = append(nodes, createNode(t, s, testNode(i, users[0].ID)))
	}
	must(t, s.DeleteNode(ctx, nodes[2].ID))
	if n := createNode(t, s, testNode(2, users[0].ID)); n.ID <= nodes[2].ID {
		t.Errorf("node ID %d reused (deleted %d)", n.ID, nodes[2].ID)
	}

	var recs []DNSRecord
	for i := range 3 {
		r := DNSRecord{Name: fmt.Sprintf("r%d.example", i), Type: "A", Value: "10.0.0.1"}
		must(t, s.CreateDNSRecord(ctx, &r))
		recs = append(recs, r)
	}
	must(t, s.DeleteDNSRecord(ctx, recs[2].ID))
	r := DNSRecord{Name: "r2.example", Type: "A", Value: "10.0.0.1"}
	must(t, s.CreateDNSRecord(ctx, &r))
	if r.ID <= recs[2].ID {
		t.Errorf("DNS record ID %d reused (deleted %d)", r.ID, recs[2].ID)
	}

	// Keys die with their user; their IDs must not come back either.
	k := PreAuthKey{Prefix: "k1", UserID: users[1].ID}
	must(t, s.CreatePreAuthKey(ctx, &k))
	must(t, s.DeleteUser(ctx, users[1].ID))
	k2 := PreAuthKey{Prefix: "k2", UserID: users[0].ID}
	must(t, s.CreatePreAuthKey(ctx, &k2))
	if k2.ID <= k.ID {
		t.Errorf("pre-auth key ID %d reused (deleted %d)", k2.ID, k.ID)
	}
}

func testDeleteUserWithNodes(t *testing.T, s Store) {
	ctx := context.Background()
	alice := createUser(t, s, "alice")
	bob := createUser(t, s, "bob")
	n := createNode(t, s, testNode(1, alice.ID))
	k := PreAuthKey{Prefix: "alicekey", UserID: alice.ID}
	must(t, s.CreatePreAuthKey(ctx, &k))
	bk := PreAuthKey{Prefix: "bobkey", UserID: bob.ID}
	must(t, s.CreatePreAuthKey(ctx, &bk))

	err := s.DeleteUser(ctx, alice.ID)
	wantErr(t, "delete user with nodes", err, ErrConflict)
	if !strings.Contains(err.Error(), "1 node") {
		t.Errorf("error %q does not say the user owns nodes", err)
	}
	users, err := s.ListUsers(ctx)
	must(t, err)
	wantEqual(t, "users after refused delete", users, []User{alice, bob})

	must(t, s.DeleteNode(ctx, n.ID))
	must(t, s.DeleteUser(ctx, alice.ID))
	keys, err := s.ListPreAuthKeys(ctx)
	must(t, err)
	wantEqual(t, "keys after delete (alice's go with her)", keys, []PreAuthKey{bk})
	wantErr(t, "delete unknown user", s.DeleteUser(ctx, 9999), ErrNotFound)
}

func testPreAuthKeys(t *testing.T, s Store) {
	ctx := context.Background()
	u := createUser(t, s, "alice")
	k := PreAuthKey{
		Prefix: "abc123", Hash: []byte{1, 2, 3, 4}, UserID: u.ID, Reusable: true, Ephemeral: true,
		Tags: []string{"tag:ci"}, Expiration: testTime(10), CreatedAt: testTime(1),
	}
	must(t, s.CreatePreAuthKey(ctx, &k))
	plain := PreAuthKey{Prefix: "plain", UserID: u.ID}
	must(t, s.CreatePreAuthKey(ctx, &plain))

	got, err := s.GetPreAuthKey(ctx, "abc123")
	must(t, err)
	wantEqual(t, "get", got, k)
	keys, err := s.ListPreAuthKeys(ctx)
	must(t, err)
	wantEqual(t, "list", keys, []PreAuthKey{k, plain})

	dup := PreAuthKey{Prefix: "abc123", UserID: u.ID}
	err = s.CreatePreAuthKey(ctx, &dup)
	wantErr(t, "duplicate prefix", err, ErrConflict)
	if !strings.Contains(err.Error(), "prefix") {
		t.Errorf("error %q does not name the prefix", err)
	}
	orphan := PreAuthKey{Prefix: "orphan", UserID: 9999}
	wantErr(t, "unknown user", s.CreatePreAuthKey(ctx, &orphan), ErrNotFound)
	_, err = s.GetPreAuthKey(ctx, "nope")
	wantErr(t, "get unknown", err, ErrNotFound)

	must(t, s.ExpirePreAuthKey(ctx, plain.ID, testTime(5)))
	plain.Expiration = testTime(5)
	got, err = s.GetPreAuthKey(ctx, "plain")
	must(t, err)
	wantEqual(t, "after expire", got, plain)
	wantErr(t, "expire unknown", s.ExpirePreAuthKey(ctx, 9999, testTime(5)), ErrNotFound)
}

func testSingleUseKey(t *testing.T, s Store) {
	ctx := context.Background()
	u := createUser(t, s, "alice")
	once := PreAuthKey{Prefix: "once", UserID: u.ID}
	must(t, s.CreatePreAuthKey(ctx, &once))

	n1 := testNode(1, u.ID)
	n1.AuthKeyID = once.ID
	must(t, s.CreateNode(ctx, &n1, once.ID))
	got, err := s.GetPreAuthKey(ctx, "once")
	must(t, err)
	if !got.Used {
		t.Fatal("single-use key not marked used by CreateNode")
	}

	n2 := testNode(2, u.ID)
	err = s.CreateNode(ctx, &n2, once.ID)
	wantErr(t, "second use", err, ErrConflict)
	if !strings.Contains(err.Error(), "already used") {
		t.Errorf("error %q does not say the key was used", err)
	}
	relogin := n1
	relogin.NodeKey = testNode(3, 0).NodeKey
	wantErr(t, "re-login with spent key", s.UpdateNode(ctx, &relogin, once.ID), ErrConflict)
	// Neither failed write left anything behind.
	wantEqual(t, "nodes", listNodes(t, s), []Node{n1})

	// A fresh single-use key works for a re-login, once.
	again := PreAuthKey{Prefix: "again", UserID: u.ID}
	must(t, s.CreatePreAuthKey(ctx, &again))
	must(t, s.UpdateNode(ctx, &relogin, again.ID))
	wantEqual(t, "nodes after re-login", listNodes(t, s), []Node{relogin})

	many := PreAuthKey{Prefix: "many", UserID: u.ID, Reusable: true}
	must(t, s.CreatePreAuthKey(ctx, &many))
	for i := 10; i < 13; i++ {
		n := testNode(i, u.ID)
		must(t, s.CreateNode(ctx, &n, many.ID))
	}

	n4 := testNode(4, u.ID)
	wantErr(t, "unknown key", s.CreateNode(ctx, &n4, 9999), ErrNotFound)
	if len(listNodes(t, s)) != 4 {
		t.Errorf("got %d nodes, want 4", len(listNodes(t, s)))
	}
}

func testSingleUseKeyRace(t *testing.T, s Store) {
	ctx := context.Background()
	u := createUser(t, s, "alice")
	k := PreAuthKey{Prefix: "race", UserID: u.ID}
	must(t, s.CreatePreAuthKey(ctx, &k))

	const racers = 32
	errs := make([]error, racers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range racers {
		wg.Go(func() {
			n := testNode(i, u.ID)
			<-start
			errs[i] = s.CreateNode(ctx, &n, k.ID)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, ErrConflict):
			t.Errorf("racer %d: got %v, want nil or ErrConflict", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d registrations succeeded with one single-use key, want exactly 1", wins)
	}
	if got := len(listNodes(t, s)); got != 1 {
		t.Errorf("%d nodes stored, want 1", got)
	}
}

func testConcurrentCreates(t *testing.T, s Store) {
	ctx := context.Background()
	u := createUser(t, s, "alice")
	const n = 64
	nodes := make([]Node, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			nodes[i] = testNode(i, u.ID)
			if err := s.CreateNode(ctx, &nodes[i], 0); err != nil {
				t.Errorf("create node %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got := listNodes(t, s)
	byID := make(map[int64]Node)
	for _, n := range nodes {
		byID[n.ID] = n
	}
	if len(byID) != n || len(got) != n {
		t.Fatalf("%d distinct IDs, %d stored nodes; want %d of each", len(byID), len(got), n)
	}
	for _, g := range got {
		wantEqual(t, fmt.Sprintf("node %d", g.ID), g, byID[g.ID])
	}
}

func testAPIKeys(t *testing.T, s Store) {
	ctx := context.Background()
	k := APIKey{Prefix: "api1", Hash: []byte("hash"), Expiration: testTime(20), CreatedAt: testTime(1)}
	must(t, s.CreateAPIKey(ctx, &k))
	k2 := APIKey{Prefix: "api2", Hash: []byte("hash2"), LastUsed: testTime(2)}
	must(t, s.CreateAPIKey(ctx, &k2))

	got, err := s.GetAPIKey(ctx, "api1")
	must(t, err)
	wantEqual(t, "get", got, k)
	keys, err := s.ListAPIKeys(ctx)
	must(t, err)
	wantEqual(t, "list", keys, []APIKey{k, k2})

	dup := APIKey{Prefix: "api1"}
	wantErr(t, "duplicate", s.CreateAPIKey(ctx, &dup), ErrConflict)
	_, err = s.GetAPIKey(ctx, "nope")
	wantErr(t, "get unknown", err, ErrNotFound)

	must(t, s.ExpireAPIKey(ctx, k.ID, testTime(3)))
	must(t, s.TouchAPIKey(ctx, k.ID, testTime(4)))
	k.Expiration, k.LastUsed = testTime(3), testTime(4)
	got, err = s.GetAPIKey(ctx, "api1")
	must(t, err)
	wantEqual(t, "after expire and touch", got, k)
	wantErr(t, "expire unknown", s.ExpireAPIKey(ctx, 9999, testTime(3)), ErrNotFound)
	wantErr(t, "touch unknown", s.TouchAPIKey(ctx, 9999, testTime(3)), ErrNotFound)
}

func testDNSRecords(t *testing.T, s Store) {
	ctx := context.Background()
	a := DNSRecord{Name: "db.example.com", Type: "A", Value: "10.1.2.3"}
	aaaa := DNSRecord{Name: "db.example.com", Type: "AAAA", Value: "fd00::3"}
	must(t, s.CreateDNSRecord(ctx, &a))
	must(t, s.CreateDNSRecord(ctx, &aaaa))
	recs, err := s.ListDNSRecords(ctx)
	must(t, err)
	wantEqual(t, "list", recs, []DNSRecord{a, aaaa})

	dup := DNSRecord{Name: "db.example.com", Type: "A", Value: "10.1.2.3"}
	wantErr(t, "duplicate", s.CreateDNSRecord(ctx, &dup), ErrConflict)

	must(t, s.DeleteDNSRecord(ctx, a.ID))
	wantErr(t, "delete twice", s.DeleteDNSRecord(ctx, a.ID), ErrNotFound)
	recs, err = s.ListDNSRecords(ctx)
	must(t, err)
	wantEqual(t, "list after delete", recs, []DNSRecord{aaaa})
}

func testPolicies(t *testing.T, s Store) {
	ctx := context.Background()
	_, err := s.CurrentPolicy(ctx)
	wantErr(t, "current of none", err, ErrNotFound)

	var want []Policy
	for i := range 3 {
		p := Policy{Data: fmt.Sprintf(`{"acls": [], "v": %d}`, i), CreatedAt: testTime(1 + i)}
		must(t, s.PutPolicy(ctx, &p))
		want = append(want, p)
	}
	// The same text again is a new version, not a conflict.
	same := Policy{Data: want[0].Data, CreatedAt: testTime(9)}
	must(t, s.PutPolicy(ctx, &same))
	want = append(want, same)

	cur, err := s.CurrentPolicy(ctx)
	must(t, err)
	wantEqual(t, "current", cur, same)
	all, err := s.ListPolicies(ctx)
	must(t, err)
	wantEqual(t, "history, oldest first", all, want)
}

func testSettings(t *testing.T, s Store) {
	ctx := context.Background()
	_, err := s.Setting(ctx, "noise_key")
	wantErr(t, "unset", err, ErrNotFound)
	must(t, s.PutSetting(ctx, "noise_key", "privkey:01"))
	must(t, s.PutSetting(ctx, "other", ""))
	must(t, s.PutSetting(ctx, "noise_key", "privkey:02"))
	for name, want := range map[string]string{"noise_key": "privkey:02", "other": ""} {
		got, err := s.Setting(ctx, name)
		must(t, err)
		if got != want {
			t.Errorf("setting %q = %q, want %q", name, got, want)
		}
	}
}

// testNoAliasing checks that neither the caller's value after a write nor a
// value returned by a read shares memory with the store.
func testNoAliasing(t *testing.T, s Store) {
	ctx := context.Background()
	u := createUser(t, s, "alice")
	n := fullNode(1, u.ID)
	must(t, s.CreateNode(ctx, &n, 0))
	want := fullNode(1, u.ID)
	want.ID = n.ID

	n.Tags[0] = "tag:mutated"
	n.Hostinfo[0] = 'X'
	n.ApprovedRoutes[0] = netip.MustParsePrefix("1.0.0.0/8")
	got := listNodes(t, s)
	wantEqual(t, "after mutating the input", got, []Node{want})

	got[0].Tags[0] = "tag:mutated"
	got[0].Hostinfo[0] = 'X'
	got[0].AdvertisedRoutes[0] = netip.MustParsePrefix("1.0.0.0/8")
	wantEqual(t, "after mutating a read", listNodes(t, s), []Node{want})

	k := PreAuthKey{Prefix: "p", Hash: []byte{1, 2}, UserID: u.ID, Tags: []string{"tag:a"}}
	must(t, s.CreatePreAuthKey(ctx, &k))
	k.Hash[0], k.Tags[0] = 9, "tag:mutated"
	got2, err := s.GetPreAuthKey(ctx, "p")
	must(t, err)
	wantEqual(t, "key after mutating the input", got2, PreAuthKey{ID: k.ID, Prefix: "p", Hash: []byte{1, 2}, UserID: u.ID, Tags: []string{"tag:a"}})
}

func testCanceledContext(t *testing.T, s Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	u := User{Name: "alice"}
	wantErr(t, "create with canceled context", s.CreateUser(ctx, &u), context.Canceled)
	users, err := s.ListUsers(context.Background())
	must(t, err)
	wantEqual(t, "users", users, nil)
}
