package nettest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// InteropEnv is the environment variable that decides what happens to
// root-only tests: "1" makes a missing precondition (root, tools) a failure,
// "0" skips them even as root (the unit pass of `make test` uses it so the
// interop packages run once, in their own pass), unset runs them when root
// and skips them otherwise.
const InteropEnv = "WEFT_INTEROP"

// RequireRoot skips t when the process is not root, or fails it when
// WEFT_INTEROP=1 demands the root-only tests. WEFT_INTEROP=0 skips t always.
func RequireRoot(t testing.TB) {
	t.Helper()
	switch os.Getenv(InteropEnv) {
	case "0":
		t.Skipf("%s=0: root-only test left to the interop pass of `make test`", InteropEnv)
	case "1":
		if os.Geteuid() != 0 {
			t.Fatalf("%s=1 but running as uid %d: run the interop tests as root (sudo make test), or unset %s to skip them", InteropEnv, os.Geteuid(), InteropEnv)
		}
	default:
		if os.Geteuid() != 0 {
			t.Skipf("needs root for network namespaces; run `make test` as root (set %s=1 to make this a failure instead of a skip)", InteropEnv)
		}
	}
}

// RequireTools skips (or, with WEFT_INTEROP=1, fails) t when one of the named
// programs is not installed. `make test` installs them when run as root.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := LookTool(name); err != nil {
			msg := fmt.Sprintf("%v; install it (make test does: apt-get install iproute2 nftables iperf3 curl iputils-ping)", err)
			if os.Getenv(InteropEnv) == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// LookTool finds an administration program such as ip or nft. It also looks
// in /usr/sbin and /sbin, which are missing from PATH in some non-login root
// shells (cron, CI runners).
func LookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %q not found in PATH, /usr/sbin or /sbin", name)
}
