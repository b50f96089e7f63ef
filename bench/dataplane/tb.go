package main

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
)

// benchTB adapts the interop and nettest helpers, written for tests, to a
// program: Fatal and Skip unwind with a panic that run recovers, and
// cleanups run in reverse order when run returns. Methods the helpers do
// not call are left to the embedded nil interface (they would panic).
type benchTB struct {
	testing.TB

	mu sync.Mutex
	// guarded by mu:
	cleanups []func()
	failed   bool
}

// fatalError is what Fatal and Skip panic with.
type fatalError struct{ msg string }

func (b *benchTB) Helper()      {}
func (b *benchTB) Name() string { return "bench-dataplane" }

func (b *benchTB) Cleanup(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cleanups = append(b.cleanups, f)
}

func (b *benchTB) TempDir() string {
	d, err := os.MkdirTemp("", "wft-bench-")
	if err != nil {
		b.Fatalf("TempDir: %v", err)
	}
	b.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (b *benchTB) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func (b *benchTB) Errorf(format string, args ...any) {
	b.mu.Lock()
	b.failed = true
	b.mu.Unlock()
	b.Logf("error: "+format, args...)
}

func (b *benchTB) Fatalf(format string, args ...any) {
	b.mu.Lock()
	b.failed = true
	b.mu.Unlock()
	panic(fatalError{fmt.Sprintf(format, args...)})
}

func (b *benchTB) Fatal(args ...any) { b.Fatalf("%s", fmt.Sprint(args...)) }

func (b *benchTB) Skipf(format string, args ...any) {
	panic(fatalError{"cannot run: " + fmt.Sprintf(format, args...)})
}

func (b *benchTB) Skip(args ...any) { b.Skipf("%s", fmt.Sprint(args...)) }

func (b *benchTB) Failed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

// runCleanups runs the registered cleanups, last first.
func (b *benchTB) runCleanups() {
	b.mu.Lock()
	cs := slices.Clone(b.cleanups)
	b.cleanups = nil
	b.mu.Unlock()
	for _, f := range slices.Backward(cs) {
		f()
	}
}

// guard runs fn with tb, turning a fatalError panic into an error.
func guard(tb *benchTB, fn func(tb *benchTB) error) (err error) {
	defer tb.runCleanups()
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s", fe.msg)
		}
	}()
	return fn(tb)
}
