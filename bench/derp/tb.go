package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// benchTB lets the benchmark reuse the interop lab helpers
// (internal/nettest, interop), which take a testing.TB, outside `go test`.
// Fatal and Skip unwind the scenario goroutine with a panic that runScenario
// recovers; cleanups then run in reverse order, tearing the lab down.
//
// The embedded interface is nil: it only supplies testing.TB's unexported
// method. Calling a method not overridden here panics, which runScenario
// reports like a failure.
type benchTB struct {
	testing.TB
	name string

	mu sync.Mutex
	// Guarded by mu:
	cleanups []func()
	failed   bool
	tmp      []string
}

// abort is the panic value of Fatal and Skip.
type abort struct{ skipped bool }

func newBenchTB(name string) *benchTB { return &benchTB{name: name} }

func (b *benchTB) Name() string { return b.name }
func (b *benchTB) Helper()      {}
func (b *benchTB) Log(args ...any) {
	fmt.Fprintln(os.Stderr, append([]any{b.name + ":"}, args...)...)
}
func (b *benchTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, b.name+": "+format+"\n", args...)
}
func (b *benchTB) Error(args ...any)                 { b.Log(args...); b.Fail() }
func (b *benchTB) Errorf(format string, args ...any) { b.Logf(format, args...); b.Fail() }
func (b *benchTB) Fatal(args ...any)                 { b.Error(args...); b.FailNow() }
func (b *benchTB) Fatalf(format string, args ...any) { b.Errorf(format, args...); b.FailNow() }
func (b *benchTB) Skip(args ...any)                  { b.Log(args...); b.SkipNow() }
func (b *benchTB) Skipf(format string, args ...any)  { b.Logf(format, args...); b.SkipNow() }
func (b *benchTB) SkipNow()                          { panic(abort{skipped: true}) }
func (b *benchTB) FailNow()                          { panic(abort{}) }

func (b *benchTB) Fail() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failed = true
}

func (b *benchTB) Failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

func (b *benchTB) Cleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, f)
}

func (b *benchTB) TempDir() string {
	d, err := os.MkdirTemp("", "derp-bench-")
	if err != nil {
		b.Fatalf("TempDir: %v", err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// runScenario runs f with a fresh benchTB and tears everything down
// afterwards, turning Fatal (or any panic) into an error.
func runScenario(name string, f func(tb testing.TB)) (err error) {
	b := newBenchTB(name)
	defer func() {
		r := recover()
		b.mu.Lock()
		cs := slices.Clone(b.cleanups)
		b.mu.Unlock()
		if r != nil {
			if a, ok := r.(abort); !ok {
				buf := make([]byte, 8<<10)
				buf = buf[:runtime.Stack(buf, false)]
				b.Errorf("panic: %v\n%s", r, buf)
			} else if a.skipped {
				err = fmt.Errorf("%s skipped", name)
			}
		}
		for _, c := range slices.Backward(cs) {
			c()
		}
		if err == nil && b.Failed() {
			err = fmt.Errorf("%s failed (see the messages above)", name)
		}
	}()
	f(b)
	return nil
}
