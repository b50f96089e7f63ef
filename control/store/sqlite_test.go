package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSQLite(t *testing.T) {
	runConformance(t, func(t testing.TB) Store {
		return openTestSQLite(t, filepath.Join(t.TempDir(), "weft.db"))
	})
}

func openTestSQLite(t testing.TB, path string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// contents is everything a store holds, for whole-store comparisons.
type contents struct {
	Users    []User
	Nodes    []Node
	PreAuth  []PreAuthKey
	APIKeys  []APIKey
	DNS      []DNSRecord
	Policies []Policy
	Settings map[string]string
}

func dump(t testing.TB, s Store, settings ...string) contents {
	t.Helper()
	ctx := context.Background()
	var c contents
	var err error
	c.Users, err = s.ListUsers(ctx)
	must(t, err)
	c.Nodes, err = s.ListNodes(ctx)
	must(t, err)
	c.PreAuth, err = s.ListPreAuthKeys(ctx)
	must(t, err)
	c.APIKeys, err = s.ListAPIKeys(ctx)
	must(t, err)
	c.DNS, err = s.ListDNSRecords(ctx)
	must(t, err)
	c.Policies, err = s.ListPolicies(ctx)
	must(t, err)
	c.Settings = make(map[string]string)
	for _, name := range settings {
		c.Settings[name], err = s.Setting(ctx, name)
		must(t, err)
	}
	return c
}

// populate writes one of everything.
func populate(t testing.TB, s Store) {
	t.Helper()
	ctx := context.Background()
	u := createUser(t, s, "alice")
	createUser(t, s, "bob")
	k := PreAuthKey{Prefix: "once", Hash: []byte{1}, UserID: u.ID, Tags: []string{"tag:x"}, CreatedAt: testTime(1)}
	must(t, s.CreatePreAuthKey(ctx, &k))
	n := fullNode(1, u.ID)
	must(t, s.CreateNode(ctx, &n, k.ID))
	createNode(t, s, testNode(2, u.ID))
	a := APIKey{Prefix: "api", Hash: []byte{2}, Expiration: testTime(9), LastUsed: testTime(3)}
	must(t, s.CreateAPIKey(ctx, &a))
	r := DNSRecord{Name: "x.example", Type: "A", Value: "10.0.0.1"}
	must(t, s.CreateDNSRecord(ctx, &r))
	for i := range 2 {
		p := Policy{Data: fmt.Sprint(i), CreatedAt: testTime(i + 1)}
		must(t, s.PutPolicy(ctx, &p))
	}
	must(t, s.PutSetting(ctx, "noise_key", "privkey:aa"))
}

func TestSQLiteReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.db")
	s := openTestSQLite(t, path)
	populate(t, s)
	before := dump(t, s, "noise_key")
	// Delete the newest node: its ID must stay burnt across a reopen.
	last := before.Nodes[len(before.Nodes)-1]
	must(t, s.DeleteNode(context.Background(), last.ID))
	before.Nodes = before.Nodes[:len(before.Nodes)-1]
	must(t, s.Close())

	s2 := openTestSQLite(t, path)
	wantEqual(t, "contents after reopen", dump(t, s2, "noise_key"), before)
	if n := createNode(t, s2, testNode(3, before.Users[0].ID)); n.ID <= last.ID {
		t.Errorf("node ID %d after reopen reuses deleted %d", n.ID, last.ID)
	}
}

func TestSQLiteMigrateEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.db")
	must(t, os.WriteFile(path, nil, 0o600))
	s := openTestSQLite(t, path)
	v, err := schemaVersion(context.Background(), s.reader)
	must(t, err)
	if v != len(migrations) {
		t.Fatalf("schema version %d after open, want %d", v, len(migrations))
	}
	createUser(t, s, "alice")
	must(t, s.Close())

	// Reopening an up-to-date database applies nothing.
	s = openTestSQLite(t, path)
	var rows int
	must(t, s.reader.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&rows))
	if rows != len(migrations) {
		t.Errorf("%d schema_migrations rows, want %d", rows, len(migrations))
	}
}

func TestSQLitePragmas(t *testing.T) {
	s := openTestSQLite(t, filepath.Join(t.TempDir(), "weft.db"))
	for _, tt := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", fmt.Sprint(busyTimeoutMS)},
	} {
		var got string
		must(t, s.writer.QueryRow("PRAGMA "+tt.pragma).Scan(&got))
		if got != tt.want {
			t.Errorf("writer PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
	_, err := s.reader.Exec(`INSERT INTO settings (name, value) VALUES ('x', 'y')`)
	if err == nil {
		t.Error("read pool accepted a write")
	}
}

func TestSQLiteBadFile(t *testing.T) {
	// A real database to damage.
	good := filepath.Join(t.TempDir(), "good.db")
	s := openTestSQLite(t, good)
	populate(t, s)
	for i := range 200 { // enough pages that truncation loses table data
		createNode(t, s, testNode(100+i, 1))
	}
	must(t, s.Close())
	real, err := os.ReadFile(good)
	must(t, err)

	random := make([]byte, 8192)
	rand.Read(random)
	tests := []struct {
		name string
		data []byte
	}{
		{"Text", []byte("this is my config file\n")},
		{"Random", random},
		{"HeaderOnly", real[:100]},
		{"TruncatedHalf", real[:len(real)/2]},
		{"TruncatedToPages", real[:4096*2]},
		{"ZeroedTail", append(bytes.Clone(real[:len(real)/2]), make([]byte, len(real)-len(real)/2)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "weft.db")
			must(t, os.WriteFile(path, tt.data, 0o600))
			s, err := OpenSQLite(context.Background(), path, nil)
			if err == nil {
				s.Close()
				t.Fatal("OpenSQLite succeeded on a damaged file")
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			t.Logf("error: %v", err)
			after, rerr := os.ReadFile(path)
			must(t, rerr)
			if !bytes.Equal(after, tt.data) {
				t.Errorf("OpenSQLite modified the damaged file (%d bytes before, %d after)", len(tt.data), len(after))
			}
		})
	}
}

func TestSQLiteFutureSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.db")
	s := openTestSQLite(t, path)
	future := len(migrations) + 1
	_, err := s.writer.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 'x')`, future)
	must(t, err)
	must(t, s.Close())
	before, err := os.ReadFile(path)
	must(t, err)

	s, err = OpenSQLite(context.Background(), path, nil)
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite accepted a database from the future")
	}
	wantErr(t, "open", err, ErrSchemaTooNew)
	for _, want := range []string{path, "upgrade weft-control", fmt.Sprint(future)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	after, err := os.ReadFile(path)
	must(t, err)
	if !bytes.Equal(before, after) {
		t.Error("OpenSQLite modified a database it refused")
	}
}

// TestSQLiteTwoHandles opens the file twice, as a second weft-control (or
// an admin tool) would: each sees the other's commits, and concurrent
// writers wait on the lock rather than failing with SQLITE_BUSY.
func TestSQLiteTwoHandles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "weft.db")
	a := openTestSQLite(t, path)
	u := createUser(t, a, "alice")
	b := openTestSQLite(t, path)
	users, err := b.ListUsers(context.Background())
	must(t, err)
	wantEqual(t, "users seen by second handle", users, []User{u})

	const each = 20
	errc := make(chan error, 2*each)
	for _, s := range []*SQLite{a, b} {
		go func() {
			for i := range each {
				n := testNode(i, u.ID)
				if s == b {
					n = testNode(1000+i, u.ID)
				}
				errc <- s.CreateNode(context.Background(), &n, 0)
			}
		}()
	}
	for range 2 * each {
		must(t, <-errc)
	}
	wantEqual(t, "handles agree", dump(t, a), dump(t, b))
	if got := len(listNodes(t, a)); got != 2*each {
		t.Errorf("%d nodes, want %d", got, 2*each)
	}
}

// TestSQLiteKill9 writes in a child process that SIGKILLs itself as soon as
// the writes return, then checks that every acknowledged write is there.
func TestSQLiteKill9(t *testing.T) {
	const n = 50
	if path := os.Getenv("WEFT_STORE_KILL9_DB"); path != "" {
		s, err := OpenSQLite(context.Background(), path, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		for i := range n {
			u := User{Name: fmt.Sprintf("user%d", i)}
			if err := s.CreateUser(context.Background(), &u); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(4)
			}
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute) // not reached
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "weft.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteKill9$")
	cmd.Env = append(os.Environ(), "WEFT_STORE_KILL9_DB="+path)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die by SIGKILL: %v\n%s", err, out)
	}
	s := openTestSQLite(t, path)
	users, err := s.ListUsers(context.Background())
	must(t, err)
	if len(users) != n {
		t.Fatalf("%d users after kill -9, want %d", len(users), n)
	}
}
