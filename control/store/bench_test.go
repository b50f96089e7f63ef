package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// targetRegsPerSec is the registration rate weft-control must sustain.
const targetRegsPerSec = 100

// BenchmarkCreateNode measures node registrations per second. "memory" is
// the in-process baseline; "sqlite-key" is the real registration write (a
// node plus marking its single-use key, one fsync'd transaction);
// "sqlite-parallel" shows that concurrent registrations serialize on the
// writer without errors. Each reports regs/s and, for SQLite, the ratio to
// the required 100/s as x-target.
func BenchmarkCreateNode(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		benchCreate(b, NewMemory(), false)
	})
	b.Run("sqlite", func(b *testing.B) {
		benchCreate(b, openTestSQLite(b, filepath.Join(b.TempDir(), "weft.db")), false)
	})
	b.Run("sqlite-key", func(b *testing.B) {
		benchCreate(b, openTestSQLite(b, filepath.Join(b.TempDir(), "weft.db")), true)
	})
	b.Run("sqlite-parallel", func(b *testing.B) {
		s := openTestSQLite(b, filepath.Join(b.TempDir(), "weft.db"))
		u := createUser(b, s, "bench")
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n := testNode(int(next.Add(1)), u.ID)
				if err := s.CreateNode(context.Background(), &n, 0); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b, true)
	})
}

func benchCreate(b *testing.B, s Store, withKey bool) {
	ctx := context.Background()
	u := createUser(b, s, "bench")
	keys := make([]int64, b.N)
	if withKey {
		for i := range keys {
			k := PreAuthKey{Prefix: fmt.Sprintf("k%d", i), UserID: u.ID}
			must(b, s.CreatePreAuthKey(ctx, &k))
			keys[i] = k.ID
		}
	}
	b.ResetTimer()
	for i := range b.N {
		n := testNode(i, u.ID)
		if err := s.CreateNode(ctx, &n, keys[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_, isSQLite := s.(*SQLite)
	reportRate(b, isSQLite)
}

func reportRate(b *testing.B, vsTarget bool) {
	secs := b.Elapsed().Seconds()
	if secs == 0 {
		return
	}
	rate := float64(b.N) / secs
	b.ReportMetric(rate, "regs/s")
	if vsTarget {
		b.ReportMetric(rate/targetRegsPerSec, "x-target")
	}
}
