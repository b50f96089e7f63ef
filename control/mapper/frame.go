package mapper

import (
	"encoding/binary"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// frame is one encoded MapResponse, shared by every session it is queued
// to. The wire bytes (4-byte little-endian length, then JSON or zstd(JSON))
// are built lazily per encoding, at most once each.
type frame struct {
	json []byte
	enc  *zstd.Encoder
	// closeAfter ends the session once this frame is written (the node
	// was deleted).
	closeAfter bool

	rawOnce, zOnce sync.Once
	raw, z         []byte
}

func newFrame(enc *zstd.Encoder, js []byte) *frame { return &frame{json: js, enc: enc} }

// wire returns the framed bytes for a session that asked for zstd or not.
func (f *frame) wire(compress bool) []byte {
	if compress {
		f.zOnce.Do(func() {
			f.z = f.enc.EncodeAll(f.json, make([]byte, 4, 4+len(f.json)/4+64))
			binary.LittleEndian.PutUint32(f.z, uint32(len(f.z)-4))
		})
		return f.z
	}
	f.rawOnce.Do(func() {
		f.raw = make([]byte, 4+len(f.json))
		binary.LittleEndian.PutUint32(f.raw, uint32(len(f.json)))
		copy(f.raw[4:], f.json)
	})
	return f.raw
}
