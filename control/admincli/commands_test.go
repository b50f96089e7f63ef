package admincli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/control/admin"
	"weft.dev/weft/control/state"
	"weft.dev/weft/wire/key"
)

func TestJSON(t *testing.T) {
	s := startServer(t)
	l := s.laptop
	want := admin.Node{
		ID: l.ID, Name: "laptop", Hostname: "laptop", User: "alice", IPv4: l.IPv4, IPv6: l.IPv6,
		Online: true, LastSeen: t0, Tags: []string{}, Created: t0,
		AdvertisedRoutes: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/24")}, ApprovedRoutes: []netip.Prefix{},
		NodeKey: l.NodeKey.String(), MachineKey: l.MachineKey.String(),
	}
	// --json before the command, between levels, and after.
	for _, args := range [][]string{
		{"--json", "nodes", "list", "--user", "alice"},
		{"nodes", "--json", "list", "--user=alice"},
		{"nodes", "list", "--user", "alice", "--json"},
	} {
		var got []admin.Node
		if err := json.Unmarshal([]byte(s.ok(t, args...)), &got); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if d := diff([]admin.Node{want}, got); d != "" {
			t.Errorf("%q (-want +got):\n%s", args, d)
		}
	}
	var one admin.Node
	if err := json.Unmarshal([]byte(s.ok(t, "nodes", "show", "laptop", "--json")), &one); err != nil {
		t.Fatal(err)
	}
	if d := diff(want, one); d != "" {
		t.Errorf("nodes show (-want +got):\n%s", d)
	}
	var users []admin.User
	if err := json.Unmarshal([]byte(s.ok(t, "users", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	wantUsers := []admin.User{
		{ID: 1, Name: "alice", DisplayName: "Alice A", Email: "alice@example.com", Created: t0},
		{ID: 2, Name: "bob", DisplayName: "bob", Created: t0},
	}
	if d := diff(wantUsers, users); d != "" {
		t.Errorf("users list --json (-want +got):\n%s", d)
	}
	// Empty lists are [], not null.
	for _, args := range [][]string{{"dns", "records", "list"}, {"apikeys", "list"}, {"keys", "list"}, {"nodes", "pending"}} {
		if got := s.ok(t, append(args, "--json")...); got != "[]\n" {
			t.Errorf("%q --json = %q, want []", args, got)
		}
	}
}

func TestCommands(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	steps := []struct {
		args       []string
		stdout     string // exact, or a regexp when it starts with ^
		stderrHas  string
		wantFailed bool
	}{
		{args: []string{"users", "create", "carol", "--display-name", "Carol", "--email", "c@example.com"}, stdout: "Created user carol (ID 3)\n"},
		{args: []string{"users", "delete", "carol"}, stdout: "Deleted user carol\n"},
		{args: []string{"users", "delete", "alice"}, stderrHas: "delete them first", wantFailed: true},
		{args: []string{"nodes", "rename", "laptop", "work"}, stdout: "Renamed node 1 to work\n"},
		{args: []string{"nodes", "set-ip", "work", "100.64.7.7"}, stdout: "Node work (ID 1) now has addresses 100.64.7.7,fd7a:115c:a1e0::1\n"},
		{args: []string{"nodes", "tag", "2", "tag:db,tag:prod"}, stdout: "Node server (ID 2) tags: tag:db,tag:prod\n"},
		{args: []string{"nodes", "tag", "2", ""}, stdout: "Node server (ID 2) tags: -\n"},
		{args: []string{"nodes", "expire", "server"}, stdout: "Expired node server (ID 2); it must log in again\n"},
		{args: []string{"routes", "approve", "work", "10.1.0.0/24", "10.9.0.0/16"}, stdout: "" +
			"ID  Node  Advertised   Approved                 Primary\n" +
			"1   work  10.1.0.0/24  10.1.0.0/24,10.9.0.0/16  10.1.0.0/24\n",
			stderrHas: "warning: node \"work\" does not advertise 10.9.0.0/16"},
		{args: []string{"routes", "unapprove", "work", "10.9.0.0/16"}, stdout: "" +
			"ID  Node  Advertised   Approved     Primary\n" +
			"1   work  10.1.0.0/24  10.1.0.0/24  10.1.0.0/24\n"},
		{args: []string{"routes", "approve", "work", "10.1.0.1/24"}, stderrHas: "use 10.1.0.0/24", wantFailed: true},
		{args: []string{"dns", "records", "add", "db.internal", "AAAA", "fd7a::9"}, stdout: "Added DNS record 1: db.internal AAAA fd7a::9\n"},
		{args: []string{"dns", "records", "add", "web.internal", "100.64.0.80"}, stdout: "Added DNS record 2: web.internal A 100.64.0.80\n"},
		{args: []string{"dns", "records", "delete", "1"}, stdout: "Deleted DNS record 1\n"},
		{args: []string{"dns", "records", "delete", "db"}, stderrHas: "numeric ID", wantFailed: true},
		{args: []string{"nodes", "delete", "work"}, stderrHas: "is online", wantFailed: true},
		{args: []string{"nodes", "delete", "work", "--force"}, stdout: "Deleted node work (ID 1)\n"},
		{args: []string{"nodes", "delete", "server"}, stdout: "Deleted node server (ID 2)\n"},
		{args: []string{"nodes", "delete", "server"}, stderrHas: "weft-control nodes list", wantFailed: true},
		{args: []string{"apikeys", "create", "--expiry", "24h"}, stdout: `^weft-api-[0-9a-f]{12}-[0-9a-f]{48}\n$`},
	}
	for _, st := range steps {
		r := s.run(t, nil, st.args...)
		if (r.code != 0) != st.wantFailed || !strings.Contains(r.stderr, st.stderrHas) || st.stderrHas == "" && r.stderr != "" {
			t.Fatalf("weft-control %q: exit %d\nstdout: %s\nstderr: %s\nwant failed=%v, stderr containing %q", st.args, r.code, r.stdout, r.stderr, st.wantFailed, st.stderrHas)
		}
		if st.wantFailed {
			if r.code != 1 || r.stdout != "" {
				t.Errorf("weft-control %q failed with exit %d and stdout %q, want 1 and nothing", st.args, r.code, r.stdout)
			}
			continue
		}
		if strings.HasPrefix(st.stdout, "^") {
			if !regexp.MustCompile(st.stdout).MatchString(r.stdout) {
				t.Errorf("weft-control %q: stdout %q does not match %s", st.args, r.stdout, st.stdout)
			}
		} else if r.stdout != st.stdout {
			t.Errorf("weft-control %q:\n got stdout %q\nwant %q", st.args, r.stdout, st.stdout)
		}
	}
	if recs := s.st.DNSRecords(); len(recs) != 1 || recs[0].Name != "web.internal" {
		t.Errorf("dns records after the steps: %+v", recs)
	}

	// Keys: create, list (no secret), expire by prefix.
	keyText := strings.TrimSpace(s.ok(t, "keys", "create", "--user", "bob", "--tags", "tag:ci"))
	prefix := strings.Split(strings.TrimPrefix(keyText, "weft-auth-"), "-")[0]
	list := s.ok(t, "keys", "list", "--user", "bob")
	wantList := "" +
		"ID  Prefix        User  Reusable  Ephemeral  Used  Tags    Expiration           Created\n" +
		"1   " + prefix + "  bob   no        no         no    tag:ci  2026-03-04 06:06:07  2026-03-04 05:06:07\n"
	if list != wantList {
		t.Errorf("keys list:\n got:\n%s\nwant:\n%s", list, wantList)
	}
	if got := s.ok(t, "keys", "expire", prefix); got != "Expired pre-auth key "+prefix+"\n" {
		t.Errorf("keys expire printed %q", got)
	}
	if _, err := s.st.CheckPreAuthKey(ctx, keyText); err != state.ErrKeyExpired {
		t.Errorf("after keys expire, CheckPreAuthKey = %v, want %v", err, state.ErrKeyExpired)
	}
	if got := s.ok(t, "keys", "list", "--user", "bob"); !strings.Contains(got, "(expired)") {
		t.Errorf("keys list does not show the expiry:\n%s", got)
	}
}

func TestRegister(t *testing.T) {
	s := startServer(t)
	nk := key.NewNode().Public()
	id := s.st.StartLogin(state.RegisterParams{MachineKey: key.NewMachine().Public(), NodeKey: nk, Hostname: "phone"})
	want := "" +
		"ID                        Hostname  Node key" + strings.Repeat(" ", len(nk.String())-len("Node key")) + "  Waiting since        Expires\n" +
		id + "  phone     " + nk.String() + "  2026-03-04 05:06:07  2026-03-04 05:21:07\n"
	if got := s.ok(t, "nodes", "pending"); got != want {
		t.Errorf("nodes pending:\n got:\n%s\nwant:\n%s", got, want)
	}
	r := s.run(t, nil, "nodes", "register", id)
	if r.code != 1 || !strings.Contains(r.stderr, "missing --user") {
		t.Errorf("register without --user: %+v", r)
	}
	// ID before the flag: flags after positional arguments work.
	if got := s.ok(t, "nodes", "register", id, "--user", "alice"); got != "Registered node phone (ID 3) for user alice: 100.64.0.3,fd7a:115c:a1e0::3\n" {
		t.Errorf("nodes register printed %q", got)
	}
}

func TestErrors(t *testing.T) {
	s := startServer(t)
	dead := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		stderr string // exact
	}{
		{"not running", []string{"--state-dir", dead, "users", "list"},
			"weft-control users list: cannot reach weft-control at " + dead + "/weft-control.sock: is it running? start it with: weft-control --state-dir " + dead + "\n"},
		{"unknown command", []string{"frobnicate"},
			"weft-control: unknown command \"frobnicate\": use one of users, keys, nodes, routes, dns, policy, apikeys (see: weft-control --help)\n"},
		{"unknown subcommand", []string{"users", "frob"},
			"weft-control users: unknown command \"frob\": use one of create, list, delete (see: weft-control users --help)\n"},
		{"missing argument", []string{"users", "create"},
			"weft-control users create: wrong number of arguments: usage: weft-control users create NAME (see: weft-control users create --help)\n"},
		{"extra argument", []string{"nodes", "rename", "a", "b", "c"},
			"weft-control nodes rename: wrong number of arguments: usage: weft-control nodes rename NODE NEWNAME (see: weft-control nodes rename --help)\n"},
		{"unknown flag", []string{"users", "list", "--colour"},
			"weft-control users list: flag provided but not defined: -colour (see: weft-control users list --help)\n"},
		{"server error", []string{"users", "delete", "zed"},
			"weft-control users delete: no user \"zed\": list users with: weft-control users list\n"},
		{"keys without user", []string{"keys", "create"},
			"weft-control keys create: missing --user: say which user the key is for, e.g. --user alice (list users with: weft-control users list)\n"},
		{"remote without key", []string{"--server", "https://ctl.example", "users", "list"},
			"weft-control users list: no API key for the remote admin API: pass --api-key or set WEFT_API_KEY (create a key on the server with: weft-control apikeys create)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.run(t, nil, tc.args...)
			if r.code != 1 || r.stdout != "" || r.stderr != tc.stderr {
				t.Errorf("weft-control %q: exit %d, stdout %q\n got stderr %q\nwant stderr %q", tc.args, r.code, r.stdout, r.stderr, tc.stderr)
			}
		})
	}
	r := s.run(t, nil, "nodes")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "Usage: weft-control nodes <command>") || !strings.Contains(r.stderr, "missing command") {
		t.Errorf("nodes without a command: %+v", r)
	}
}

func TestHelp(t *testing.T) {
	s := startServer(t)
	tests := []struct {
		args []string
		want []string // in stdout
	}{
		{[]string{"--help"}, []string{"Usage: weft-control <command> [flags]", "users", "apikeys", "--state-dir DIR"}},
		{[]string{"help"}, []string{"Usage: weft-control <command> [flags]"}},
		{[]string{"users", "--help"}, []string{"Usage: weft-control users <command> [flags]", "create NAME", "delete NAME"}},
		{[]string{"keys", "create", "-h"}, []string{"Usage: weft-control keys create --user NAME [flags]", "--reusable", "--tags TAGS", "--state-dir DIR", `(default "./weft-state")`, "Global flags", "--json"}},
		{[]string{"dns", "records", "add", "--help"}, []string{"Usage: weft-control dns records add NAME [A|AAAA] VALUE [flags]"}},
		{[]string{"nodes", "delete", "--help"}, []string{"--force"}},
	}
	for _, tc := range tests {
		r := s.run(t, nil, tc.args...)
		if r.code != 0 || r.stderr != "" {
			t.Errorf("%q: exit %d, stderr %q", tc.args, r.code, r.stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("%q: usage does not contain %q:\n%s", tc.args, w, r.stdout)
			}
		}
	}
}

// TestRemote drives the HTTP API with an API key from the environment.
func TestRemote(t *testing.T) {
	s := startServer(t)
	apiKey, _, err := s.st.CreateAPIKey(context.Background(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", admin.NewHandler(admin.Config{State: s.st, Store: s.db, RequireAPIKey: true}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	r := s.run(t, map[string]string{"WEFT_API_KEY": apiKey}, "--server", srv.URL, "users", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "alice") {
		t.Fatalf("remote users list with $WEFT_API_KEY: %+v", r)
	}
	r = s.run(t, nil, "users", "list", "--server", srv.URL, "--api-key", apiKey[:len(apiKey)-1]+"x")
	if r.code != 1 || !strings.Contains(r.stderr, "invalid api key: create a new key on the server with: weft-control apikeys create") {
		t.Fatalf("remote with a bad key: %+v", r)
	}
	r = s.run(t, nil, "users", "list", "--server", "ftp://x", "--api-key", apiKey)
	if r.code != 1 || !strings.Contains(r.stderr, "invalid server URL") {
		t.Fatalf("bad server URL: %+v", r)
	}
}

func TestIsCommand(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{[]string{"nodes", "list"}, true},
		{[]string{"--state-dir", "/x", "users", "list"}, true},
		{[]string{"--state-dir=/x", "--json", "keys", "create"}, true},
		{[]string{"--state-dir", "/x"}, false},
		{[]string{"--listen", ":8080", "users"}, false},
		{[]string{"serve"}, false},
		{nil, false},
	}
	for _, tc := range tests {
		if got := IsCommand(tc.args); got != tc.want {
			t.Errorf("IsCommand(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
