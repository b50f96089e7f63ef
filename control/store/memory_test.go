package store

import "testing"

func TestMemory(t *testing.T) {
	runConformance(t, func(t testing.TB) Store {
		m := NewMemory()
		t.Cleanup(func() { m.Close() })
		return m
	})
}
