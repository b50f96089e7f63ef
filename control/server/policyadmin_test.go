package server

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/control/admin"
	"weft.dev/weft/control/admincli"
)

// serveAdmin serves the rig's admin API on its state directory's socket,
// as Serve does, for the CLI.
func (r *polRig) serveAdmin() string {
	r.t.Helper()
	dir := r.srv.cfg.StateDir
	ln, err := admin.ListenUnix(dir)
	if err != nil {
		r.t.Fatal(err)
	}
	hs := &http.Server{Handler: r.srv.AdminHandler()}
	go hs.Serve(ln)
	r.t.Cleanup(func() { hs.Close() })
	return dir
}

// cli runs one weft-control admin command and returns its exit code and
// output.
func cli(dir string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := admincli.Run(context.Background(), append([]string{"--state-dir", dir}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyCLI: policy get / set / check / history through the admin
// socket, as an operator uses them.
func TestPolicyCLI(t *testing.T) {
	r := newPolRig(t, Config{})
	dir := r.serveAdmin()
	files := t.TempDir()
	good := filepath.Join(files, "good.hujson")
	bad := filepath.Join(files, "bad.hujson")
	writeFile(t, good, policyA)
	writeFile(t, bad, "{\n  \"acls\": [{\"action\": \"accept\", \"src\": [\"group:eng\"], \"dst\": [\"*:1-99999\"]}],\n}\n")

	if code, out, _ := cli(dir, "policy", "get"); code != 0 || !strings.Contains(out, "No policy is set") {
		t.Errorf("get without a policy: %d %q", code, out)
	}
	if code, out, errOut := cli(dir, "policy", "check", good); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("check good: %d %q %q", code, out, errOut)
	}
	code, out, errOut := cli(dir, "policy", "check", bad)
	if code != 1 || !strings.Contains(out, bad+`:2:41: group "group:eng" is not defined`) || !strings.Contains(out, bad+":2:63:") || !strings.Contains(errOut, "2 problems") {
		t.Errorf("check bad: %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if code, out, errOut := cli(dir, "policy", "set", good); code != 0 || !strings.Contains(out, "Policy version 1 applied") {
		t.Errorf("set good: %d %q %q", code, out, errOut)
	}
	code, _, errOut = cli(dir, "policy", "set", bad)
	if code != 1 || !strings.Contains(errOut, "the active policy is unchanged") || !strings.Contains(errOut, bad+`:2:41: group "group:eng"`) {
		t.Errorf("set bad: %d %q", code, errOut)
	}
	if code, out, _ := cli(dir, "policy", "get"); code != 0 || out != policyA+"\n" {
		t.Errorf("get after a refused set: %d %q", code, out)
	}
	if code, out, _ := cli(dir, "policy", "set", good); code != 0 || !strings.Contains(out, "unchanged") {
		t.Errorf("set the same file again: %d %q", code, out)
	}
	if code, out, _ := cli(dir, "policy", "history"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("history: %d %q, want a header and one version", code, out)
	}
}

// TestPolicyFile: with --policy-file the file is loaded at start and
// re-read when it changes; a bad edit is logged and the old policy stays;
// `policy set` is refused.
func TestPolicyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.hujson")
	writeFile(t, path, policyA)
	r := newPolRig(t, Config{PolicyFile: path})
	if info := r.st.Policy(); info.Text != policyA || info.File != path || info.Version != 0 {
		t.Fatalf("policy at start: %+v", info)
	}
	dir := r.serveAdmin()
	other := filepath.Join(t.TempDir(), "other.hujson")
	writeFile(t, other, `{}`)
	if code, _, errOut := cli(dir, "policy", "set", other); code != 1 || !strings.Contains(errOut, "managed by the file "+path) {
		t.Errorf("set with --policy-file: %d %q", code, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.srv.polFile.run(ctx, 10*time.Millisecond)
	edit := func(text string) {
		// Make sure the modification time moves even on coarse clocks.
		writeFile(t, path, text)
		mt := time.Now().Add(time.Duration(r.marker.Add(1)) * time.Second)
		if err := os.Chtimes(path, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	edit(`{"acls": [{"action": "accept", "src": ["group:missing"], "dst": ["*:*"]}]}`)
	time.Sleep(100 * time.Millisecond) // several polls: the bad edit must not apply
	if got := r.st.Policy().Text; got != policyA {
		t.Fatalf("a bad edit replaced the policy: %q", got)
	}
	edit(`{"tagOwners": {"tag:server": ["alice@example.com"]}}`)
	waitUntil(t, "the edited file to apply", func() bool {
		return strings.Contains(r.st.Policy().Text, "tagOwners") && !strings.Contains(r.st.Policy().Text, "acls")
	})
	if hist, _ := r.st.PolicyHistory(context.Background()); len(hist) != 0 {
		t.Errorf("file policies went to the store: %d versions", len(hist))
	}

	writeFile(t, path, "{ nope")
	if _, err := New(context.Background(), Config{Store: r.srv.store, StateDir: t.TempDir(), PolicyFile: path, DisableDERP: true}); err == nil || !strings.Contains(err.Error(), "1:3: syntax error") {
		t.Errorf("start with a bad policy file: %v", err)
	}
}
