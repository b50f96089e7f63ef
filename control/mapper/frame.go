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

	// bufs, when set, makes the frame private to one session: its buffers
	// come from and go back to this pool (release), so full maps — the
	// largest allocations of the server — are not left to the GC.
	bufs *bufPool

	rawOnce, zOnce sync.Once
	raw, z         []byte
}

func newFrame(enc *zstd.Encoder, js []byte) *frame { return &frame{json: js, enc: enc} }

// newPrivateFrame is a frame written to one session only, whose buffers are
// recycled by release once written.
func newPrivateFrame(enc *zstd.Encoder, js []byte, bufs *bufPool) *frame {
	return &frame{json: js, enc: enc, bufs: bufs}
}

// release returns a private frame's buffers to its pool.
func (f *frame) release() {
	if f.bufs == nil {
		return
	}
	f.bufs.put(f.json)
	f.bufs.put(f.raw)
	f.bufs.put(f.z)
	f.json, f.raw, f.z = nil, nil, nil
}

// alloc returns an empty slice with capacity n, from the pool if private.
func (f *frame) alloc(n int) []byte {
	if f.bufs != nil {
		return f.bufs.get(n)
	}
	return make([]byte, 0, n)
}

// bufPool recycles large byte slices (full-map JSON and its compressed
// form). It is a small bounded free list rather than a sync.Pool: a
// registration storm builds dozens of multi-megabyte maps at once, and
// keeping all of them for reuse would trade the GC work saved for resident
// memory.
type bufPool struct {
	once sync.Once
	free chan []byte
}

// pooledBufs is how many buffers the free list keeps.
const pooledBufs = 8

// maxPooled bounds what is kept: a map bigger than this is rare and its
// buffer is better returned to the OS.
const maxPooled = 16 << 20

func (bp *bufPool) list() chan []byte {
	bp.once.Do(func() { bp.free = make(chan []byte, pooledBufs) })
	return bp.free
}

func (bp *bufPool) get(n int) []byte {
	select {
	case b := <-bp.list():
		if cap(b) >= n {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, n)
}

func (bp *bufPool) put(b []byte) {
	if b == nil || cap(b) > maxPooled {
		return
	}
	select {
	case bp.list() <- b[:0]:
	default:
	}
}

// wire returns the framed bytes for a session that asked for zstd or not.
func (f *frame) wire(compress bool) []byte {
	if compress {
		f.zOnce.Do(func() {
			f.z = f.enc.EncodeAll(f.json, f.alloc(4 + len(f.json)/4 + 64)[:4])
			binary.LittleEndian.PutUint32(f.z, uint32(len(f.z)-4))
		})
		return f.z
	}
	f.rawOnce.Do(func() {
		f.raw = f.alloc(4 + len(f.json))[:4+len(f.json)]
		binary.LittleEndian.PutUint32(f.raw, uint32(len(f.json)))
		copy(f.raw[4:], f.json)
	})
	return f.raw
}
