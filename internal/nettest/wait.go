package nettest

import (
	"fmt"
	"testing"
	"time"
)

// Poll calls fn until it returns nil or timeout has passed, and returns nil
// or the last error. The interval starts at 20ms and doubles up to 500ms, so
// fast conditions are seen quickly and slow ones are not hammered.
func Poll(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	interval := 20 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(min(interval, left))
		interval = min(2*interval, 500*time.Millisecond)
	}
}

// WaitFor polls fn like [Poll] and fails the test with fn's last error when
// timeout passes. It must be called from the test's goroutine.
func WaitFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	if err := Poll(timeout, fn); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
}
