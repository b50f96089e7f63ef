package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TailscaleVersion is the official release weft is tested against.
const TailscaleVersion = "v1.102.5"

// tailscaleCmds are the official programs the interop tests run.
func tailscaleCmds() []string { return []string{"tailscale", "tailscaled", "derper"} }

// TSBins holds the paths of the installed official programs.
type TSBins struct {
	Dir        string // the GOBIN they were installed into
	Tailscale  string // the CLI
	Tailscaled string // the daemon
	Derper     string // the DERP relay + STUN server
}

// CacheDir is ${WEFT_CACHE:-$HOME/.cache/weft}.
func CacheDir() (string, error) {
	if d := os.Getenv("WEFT_CACHE"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache dir: set WEFT_CACHE or HOME: %w", err)
	}
	return filepath.Join(home, ".cache", "weft"), nil
}

// TailscaleBinDir is where InstallTailscale puts version's binaries:
// <CacheDir>/tailscale-<version>/bin.
func TailscaleBinDir(version string) (string, error) {
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(cache, "tailscale-"+version, "bin"), nil
}

func binsIn(dir string) TSBins {
	return TSBins{
		Dir:        dir,
		Tailscale:  filepath.Join(dir, "tailscale"),
		Tailscaled: filepath.Join(dir, "tailscaled"),
		Derper:     filepath.Join(dir, "derper"),
	}
}

// complete reports whether all three programs are present and executable.
func (b TSBins) complete() bool {
	for _, p := range []string{b.Tailscale, b.Tailscaled, b.Derper} {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// InstallTailscale makes sure the official tailscale, tailscaled and derper
// of version are in the cache (see [TailscaleBinDir]) and returns their
// paths. A cold install runs `go install tailscale.com/cmd/...@version`
// and takes 2-5 minutes on 2 cores (4m20s with empty Go module and build
// caches); later calls reuse the binaries. An exclusive file lock makes
// parallel test binaries wait for one install instead of racing, and the
// binaries are built into a staging directory that is renamed into place,
// so an interrupted install never looks complete. Progress goes to logf.
func InstallTailscale(ctx context.Context, version string, logf func(format string, args ...any)) (TSBins, error) {
	dir, err := TailscaleBinDir(version)
	if err != nil {
		return TSBins{}, err
	}
	bins := binsIn(dir)
	if bins.complete() {
		return bins, nil
	}
	root := filepath.Dir(dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return TSBins{}, err
	}
	unlock, err := lockFile(ctx, filepath.Join(root, "install.lock"), logf)
	if err != nil {
		return TSBins{}, err
	}
	defer unlock()
	if bins.complete() { // another process installed while we waited
		return bins, nil
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		return TSBins{}, fmt.Errorf("install tailscale %s: the go command is needed: %w", version, err)
	}
	staging := filepath.Join(root, fmt.Sprintf("bin.tmp-%d", os.Getpid()))
	os.RemoveAll(staging)
	defer os.RemoveAll(staging)
	args := []string{"install"}
	for _, c := range tailscaleCmds() {
		args = append(args, "tailscale.com/cmd/"+c+"@"+version)
	}
	logf("interop: installing official tailscale %s (%s) into %s; a cold install takes 2-5 minutes", version, strings.Join(tailscaleCmds(), ", "), dir)
	start := time.Now()
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root // outside any module, so weft's go.mod plays no part
	cmd.Env = append(os.Environ(), "GOBIN="+staging, "GOFLAGS=-buildvcs=false")
	out, err := runLogged(cmd, start, logf)
	if err != nil {
		return TSBins{}, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	if !binsIn(staging).complete() {
		return TSBins{}, fmt.Errorf("go install finished but %s lacks one of %v", staging, tailscaleCmds())
	}
	os.RemoveAll(dir)
	if err := os.Rename(staging, dir); err != nil {
		return TSBins{}, err
	}
	logf("interop: installed tailscale %s in %v", version, time.Since(start).Round(time.Second))
	return bins, nil
}

// runLogged runs cmd, reporting every 30s that it still runs, and returns
// its combined output.
func runLogged(cmd *exec.Cmd, start time.Time, logf func(string, ...any)) (string, error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return out.String(), err
		case <-tick.C:
			logf("interop: still installing tailscale (%v)", time.Since(start).Round(time.Second))
		}
	}
}

// lockFile takes an exclusive flock on path, waiting until ctx ends. The lock
// goes away with the process, so a crashed install never blocks later runs.
func lockFile(ctx context.Context, path string, logf func(string, ...any)) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	unlock = func() { f.Close() } // closing releases the flock
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		return unlock, nil
	} else if !errors.Is(err, unix.EWOULDBLOCK) {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	logf("interop: waiting for another test process installing tailscale (lock %s)", path)
	for {
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			return unlock, nil
		}
	}
}

// RequireTailscale installs (or reuses) the official binaries of
// [TailscaleVersion] and fails t if that is impossible. Progress goes to
// stderr, where `go test -v` of one package shows it live.
func RequireTailscale(t testing.TB) TSBins {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bins, err := InstallTailscale(ctx, TailscaleVersion, func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
	})
	if err != nil {
		t.Fatalf("%v", err)
	}
	return bins
}

// Version returns the first line of `<bin> version` (tailscale) output.
func (b TSBins) Version(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, b.Tailscale, "version").Output()
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return line, nil
}
