package ctrl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// benchDelta is a typical steady-state frame: one peer's endpoints changed.
func benchDelta() *MapResponse {
	return &MapResponse{PeersChangedPatch: []*PeerChange{{
		NodeID:     42,
		DERPRegion: 900,
		Endpoints: []netip.AddrPort{
			netip.MustParseAddrPort("198.51.100.7:41641"),
			netip.MustParseAddrPort("[2001:db8::7]:41641"),
		},
	}}}
}

// BenchmarkFrameWriter compares the shared-encoder FrameWriter with the
// naive baseline of a new zstd encoder per frame, in the same run, and
// reports the speed-up as "x-vs-new-encoder" (ns/op is the shared writer).
func BenchmarkFrameWriter(b *testing.B) {
	enc := newTestEncoder(b)
	m := benchDelta()

	fw, err := NewFrameWriter(io.Discard, enc, CompressZstd)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		if err := fw.WriteMapResponse(m); err != nil {
			b.Fatal(err)
		}
		n++
	}
	shared := time.Since(start) / time.Duration(n)

	// The baseline runs after the timed loop, in its own phase, so its
	// garbage does not land on the shared encoder's clock.
	b.StopTimer()
	runtime.GC()
	rounds := min(n, 200)
	start = time.Now()
	for range rounds {
		if err := naiveWrite(io.Discard, m); err != nil {
			b.Fatal(err)
		}
	}
	naive := time.Since(start) / time.Duration(rounds)
	b.ReportMetric(float64(naive.Nanoseconds()), "new-encoder-ns/frame")
	b.ReportMetric(float64(naive)/float64(shared), "x-vs-new-encoder")
}

// naiveWrite is the baseline: marshal, then a fresh encoder for each frame.
func naiveWrite(w io.Writer, m *MapResponse) error {
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	defer z.Close()
	out := z.EncodeAll(js, make([]byte, 4))
	if len(out) < 4 {
		return fmt.Errorf("short frame")
	}
	_, err = w.Write(out)
	return err
}

// BenchmarkFrameWriterParallel measures many sessions sharing one encoder.
func BenchmarkFrameWriterParallel(b *testing.B) {
	enc := newTestEncoder(b)
	m := benchDelta()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		fw, err := NewFrameWriter(io.Discard, enc, CompressZstd)
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if err := fw.WriteMapResponse(m); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
