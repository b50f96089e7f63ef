package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// WeftBuild builds the module's commands (./cmd/...) once per test binary.
// A test package holds one in a package-level variable of its _test.go file
// and removes the output in TestMain:
//
//	var weft = interop.NewWeftBuild()
//
//	func TestMain(m *testing.M) { code := m.Run(); weft.Close(); os.Exit(code) }
//
//	func TestX(t *testing.T) { weftd := weft.Bins(t).Require(t, "weftd") }
type WeftBuild struct {
	once sync.Once
	// Set by once, read-only afterwards.
	dir  string
	bins WeftBins
	err  error
}

// NewWeftBuild returns a build that has not run yet.
func NewWeftBuild() *WeftBuild { return &WeftBuild{} }

// WeftBins are the module's commands (weftd, weft, weft-control,
// weft-derp, ...) as built for this test binary.
type WeftBins struct {
	paths map[string]string // command name -> binary
	errs  map[string]error  // command name -> why it did not build
}

// Bins builds every command under <module>/cmd with `go build -o` into a
// temporary directory the first time it is called. It fails t only when
// nothing can be built at all (no go command, no module); a command that
// does not compile is reported by [WeftBins.Require] to the tests needing
// it, so one broken command does not stop the scenarios of the others.
func (b *WeftBuild) Bins(t testing.TB) WeftBins {
	t.Helper()
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		b.dir, b.bins, b.err = buildWeft(ctx)
	})
	if b.err != nil {
		t.Fatalf("build weft commands: %v", b.err)
	}
	return b.bins
}

// Close removes the built binaries.
func (b *WeftBuild) Close() error {
	if b.dir == "" {
		return nil
	}
	return os.RemoveAll(b.dir)
}

// Path returns the binary of command name and whether it was built.
func (w WeftBins) Path(name string) (string, bool) {
	p, ok := w.paths[name]
	return p, ok
}

// Err returns why command name failed to build, or nil.
func (w WeftBins) Err(name string) error { return w.errs[name] }

// Require returns the binary of command name. It skips t when cmd/<name>
// does not exist in the tree yet, and fails t when it exists but does not
// build.
func (w WeftBins) Require(t testing.TB, name string) string {
	t.Helper()
	if err := w.errs[name]; err != nil {
		t.Fatalf("cmd/%s does not build: %v", name, err)
	}
	p, ok := w.paths[name]
	if !ok {
		t.Skipf("cmd/%s does not exist yet in this tree (have %v)", name, w.Names())
	}
	return p
}

// Names lists the commands that built, sorted.
func (w WeftBins) Names() []string {
	names := make([]string, 0, len(w.paths))
	for n := range w.paths {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ModuleRoot finds the directory of the go.mod governing the current
// directory (tests run in their package directory).
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

func buildWeft(ctx context.Context) (dir string, bins WeftBins, err error) {
	bins = WeftBins{paths: map[string]string{}, errs: map[string]error{}}
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", bins, err
	}
	entries, err := os.ReadDir(filepath.Join(root, "cmd"))
	if os.IsNotExist(err) {
		return "", bins, nil
	} else if err != nil {
		return "", bins, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && hasGoFiles(filepath.Join(root, "cmd", e.Name())) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "", bins, nil
	}
	dir, err = os.MkdirTemp("", "weft-interop-bin-")
	if err != nil {
		return "", bins, err
	}
	// One go build for all commands lets the toolchain compile them in
	// parallel; only if that fails is each built alone to find the culprit.
	if goBuild(ctx, root, dir, names...) == nil {
		for _, n := range names {
			bins.paths[n] = filepath.Join(dir, n)
		}
		return dir, bins, nil
	}
	for _, n := range names {
		if err := goBuild(ctx, root, dir, n); err != nil {
			bins.errs[n] = err
		} else {
			bins.paths[n] = filepath.Join(dir, n)
		}
	}
	return dir, bins, nil
}

// goBuild runs `go build -o dir/ ./cmd/<name>...` in the module root.
func goBuild(ctx context.Context, root, dir string, names ...string) error {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "./cmd/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func hasGoFiles(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(m) > 0
}
