package ctrl

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func newTestEncoder(t testing.TB) *FrameEncoder {
	t.Helper()
	enc, err := NewFrameEncoder()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return enc
}

// flushCounter is a writer that counts Flush calls, like http.ResponseWriter.
type flushCounter struct {
	bytes.Buffer
	flushes int
}

func (f *flushCounter) Flush() { f.flushes++ }

func TestFrameRoundTrip(t *testing.T) {
	enc := newTestEncoder(t)
	frames := []*MapResponse{
		{Node: &Node{ID: 1, Name: "n1.weft.test.", Key: nodeKey}, PacketFilter: []FilterRule{}, Health: []string{}},
		{KeepAlive: true},
		{Domain: strings.Repeat("big.", 100_000)}, // exceeds retainLimit and one read chunk
		{PeersRemoved: []NodeID{3, 4}},
	}
	for _, compression := range []string{"", CompressZstd} {
		t.Run("compress="+compression, func(t *testing.T) {
			var w flushCounter
			fw, err := NewFrameWriter(&w, enc, compression)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range frames {
				if m.KeepAlive {
					err = fw.WriteKeepAlive()
				} else {
					err = fw.WriteMapResponse(m)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if w.flushes != len(frames) {
				t.Errorf("flushes = %d, want %d", w.flushes, len(frames))
			}
			if compression == CompressZstd && !bytes.HasPrefix(w.Bytes()[4:], zstdMagic) {
				t.Errorf("first payload is not zstd: % x", w.Bytes()[:12])
			}
			fr, err := NewFrameReader(&w, compression != "", 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fr.Close()
			for i, want := range frames {
				got, err := fr.ReadMapResponse()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("frame %d:\n got %+v\nwant %+v", i, got, want)
				}
			}
			if _, err := fr.Next(); err != io.EOF {
				t.Errorf("after last frame: %v, want io.EOF", err)
			}
		})
	}
}

func TestFrameLayout(t *testing.T) {
	var w bytes.Buffer
	fw, err := NewFrameWriter(&w, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.WriteKeepAlive(); err != nil {
		t.Fatal(err)
	}
	want := append([]byte{byte(len(KeepAliveJSON)), 0, 0, 0}, KeepAliveJSON...) // little-endian length
	if !bytes.Equal(w.Bytes(), want) {
		t.Errorf("raw keepalive frame = % x, want % x", w.Bytes(), want)
	}
}

func TestKeepAliveFramesIdentical(t *testing.T) {
	// The 1.102 client skips decoding a keep-alive equal to the previous one.
	enc := newTestEncoder(t)
	var w bytes.Buffer
	fw, _ := NewFrameWriter(&w, enc, CompressZstd)
	fw.WriteKeepAlive()
	first := bytes.Clone(w.Bytes())
	w.Reset()
	fw.WriteKeepAlive()
	if !bytes.Equal(first, w.Bytes()) {
		t.Errorf("keep-alive frames differ: % x vs % x", first, w.Bytes())
	}
	payload, err := ReadFrame(bytes.NewReader(first), true, 0)
	if err != nil || string(payload) != KeepAliveJSON {
		t.Errorf("keep-alive decodes to %q, %v", payload, err)
	}
}

func TestPreEncodedFrameFanOut(t *testing.T) {
	enc := newTestEncoder(t)
	js, _ := json.Marshal(&MapResponse{PeersRemoved: []NodeID{9}})
	frame, err := enc.AppendFrame(nil, js, true)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var w bytes.Buffer
		fw, _ := NewFrameWriter(&w, enc, CompressZstd)
		if err := fw.WriteFrame(frame); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFrame(&w, true, 0)
		if err != nil || !bytes.Equal(got, js) {
			t.Fatalf("got %q, %v", got, err)
		}
	}
}

func TestFrameWriterErrors(t *testing.T) {
	if _, err := NewFrameWriter(io.Discard, nil, CompressZstd); err == nil {
		t.Error("zstd without encoder: want error")
	}
	if _, err := NewFrameWriter(io.Discard, nil, "gzip"); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("unknown compression: %v", err)
	}
	var nilEnc *FrameEncoder
	if _, err := nilEnc.AppendFrame(nil, []byte("{}"), true); err == nil {
		t.Error("nil encoder compressing: want error")
	}
	fw, _ := NewFrameWriter(failWriter{}, nil, "")
	if err := fw.WriteKeepAlive(); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("write error = %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("boom") }

func frameBytes(payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	return append(b, payload...)
}

func TestReadFrameErrors(t *testing.T) {
	enc := newTestEncoder(t)
	big, _ := enc.AppendFrame(nil, bytes.Repeat([]byte("a"), 10_000), true)
	bomb, _ := enc.AppendFrame(nil, make([]byte, 20<<20), true) // a few KiB on the wire
	tests := []struct {
		name       string
		in         []byte
		compressed bool
		max        int
		want       string
	}{
		{"empty stream", nil, false, 0, "ended before a frame"},
		{"short header", []byte{1, 0}, false, 0, "inside a length prefix"},
		{"length over cap", frameBytes(make([]byte, 100)), false, 50, "exceeds limit 50"},
		{"huge announced length", []byte{0xff, 0xff, 0xff, 0xff}, false, 0, "exceeds limit"},
		{"truncated payload", frameBytes([]byte("{}"))[:5], false, 0, "unexpected EOF"},
		{"not zstd", frameBytes([]byte(`{"KeepAlive":true}`)), true, 0, "not zstd"},
		{"corrupt zstd", frameBytes(append(bytes.Clone(zstdMagic), 0, 1, 2, 3)), true, 0, "zstd"},
		{"decoded size over cap", big, true, 5000, "exceeds limit 5000"},
		{"decompression bomb", bomb, true, 5000, "zstd: decompressed size exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFrame(bytes.NewReader(tt.in), tt.compressed, tt.max)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadFrame = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestReadMapResponseBadJSON(t *testing.T) {
	fr, _ := NewFrameReader(bytes.NewReader(frameBytes([]byte("{nope"))), false, 0)
	if _, err := fr.ReadMapResponse(); err == nil || !strings.Contains(err.Error(), "decode MapResponse") {
		t.Errorf("got %v", err)
	}
}
