package ctrl

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// Map-response framing (control.md §3.2): every MapResponse of a
// /machine/map response, keep-alives included, is a 4-byte LITTLE-endian
// length N followed by N bytes of payload. The payload is a zstd frame of
// the JSON when the request said Compress:"zstd" (1.102 always does, and
// fails on plain JSON), otherwise the JSON itself.
const (
	// FrameHeaderLen is the size of the length prefix.
	FrameHeaderLen = 4

	// CompressZstd is the MapRequest.Compress value asking for zstd frames.
	CompressZstd = "zstd"

	// DefaultMaxFrameSize caps a frame (wire and decoded size) when a reader
	// passes limit <= 0. Tailscale's own test server refuses to send more.
	DefaultMaxFrameSize = 256 << 20
)

// minDecoderMemory is the smallest decoded-size/window limit given to the
// zstd decoder (RFC 8878 recommends supporting 8 MiB windows).
const minDecoderMemory = 8 << 20

// zstdMagic starts every zstd frame (RFC 8878).
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// retainLimit is the largest scratch buffer a FrameWriter keeps between
// frames: one 20 MB initial map must not pin 20 MB per session for the
// session's lifetime; steady-state deltas are far smaller.
const retainLimit = 256 << 10

// FrameEncoder compresses map-response payloads with one shared zstd encoder
// (fastest level, as Tailscale and headscale use). It is safe for concurrent
// use: create one per server and hand it to every FrameWriter, so no frame
// pays for an encoder's allocation. EncodeAll keeps up to GOMAXPROCS
// encoder states and blocks callers beyond that, which is the right limit for
// CPU-bound work.
type FrameEncoder struct {
	z *zstd.Encoder
	// keepAlive is the complete compressed keep-alive frame, computed once:
	// identical bytes every time also hit the 1.102 client's fast path,
	// which recognises a repeat of the last keep-alive without decoding.
	keepAlive []byte
}

// NewFrameEncoder returns a FrameEncoder. Call Close when the server stops.
func NewFrameEncoder() (*FrameEncoder, error) {
	z, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, fmt.Errorf("map frame encoder: %w", err)
	}
	e := &FrameEncoder{z: z}
	e.keepAlive, err = e.AppendFrame(nil, []byte(KeepAliveJSON), true)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Close releases the encoder's resources.
func (e *FrameEncoder) Close() error { return e.z.Close() }

// AppendFrame appends one frame (length prefix and payload, zstd-compressed
// when compress is set) to dst. A nil FrameEncoder can only make raw frames.
// Servers that fan the same delta out to many sessions can build the frame
// once here and send it with FrameWriter.WriteFrame.
func (e *FrameEncoder) AppendFrame(dst, payload []byte, compress bool) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	if compress {
		if e == nil {
			return dst[:start], errors.New("map frame: zstd requested but no FrameEncoder configured")
		}
		dst = e.z.EncodeAll(payload, dst)
	} else {
		dst = append(dst, payload...)
	}
	n := len(dst) - start - FrameHeaderLen
	if uint64(n) > math.MaxUint32 {
		return dst[:start], fmt.Errorf("map frame: payload of %d bytes does not fit the 4-byte length", n)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	return dst, nil
}

// FrameWriter writes the frames of one map stream. It reuses its buffers
// between frames and is not safe for concurrent use (one per stream).
//
// If the underlying writer has a Flush method (http.ResponseWriter does),
// it is called after every frame: long-poll frames must leave at once.
type FrameWriter struct {
	w        io.Writer
	enc      *FrameEncoder
	compress bool

	js    bytes.Buffer  // JSON scratch
	jenc  *json.Encoder // writes into js
	frame []byte        // frame scratch
}

// NewFrameWriter returns a writer for a stream whose MapRequest.Compress was
// compression ("zstd" or ""). enc may be nil when compression is "".
func NewFrameWriter(w io.Writer, enc *FrameEncoder, compression string) (*FrameWriter, error) {
	fw := &FrameWriter{w: w, enc: enc}
	switch compression {
	case "":
	case CompressZstd:
		if enc == nil {
			return nil, errors.New("map frame writer: zstd requested but no FrameEncoder configured")
		}
		fw.compress = true
	default:
		return nil, fmt.Errorf("map frame writer: unsupported compression %q (want %q or none)", compression, CompressZstd)
	}
	fw.jenc = json.NewEncoder(&fw.js)
	fw.jenc.SetEscapeHTML(false)
	return fw, nil
}

// Compressed reports whether frames are zstd-compressed.
func (fw *FrameWriter) Compressed() bool { return fw.compress }

// WriteMapResponse encodes m as JSON and writes it as one frame.
func (fw *FrameWriter) WriteMapResponse(m *MapResponse) error {
	fw.js.Reset()
	if err := fw.jenc.Encode(m); err != nil {
		return fmt.Errorf("map frame: encode MapResponse: %w", err)
	}
	payload := bytes.TrimSuffix(fw.js.Bytes(), []byte("\n"))
	err := fw.WriteJSON(payload)
	if fw.js.Cap() > retainLimit {
		fw.js = bytes.Buffer{}
	}
	return err
}

// WriteJSON writes an already encoded MapResponse as one frame.
func (fw *FrameWriter) WriteJSON(payload []byte) error {
	var err error
	fw.frame, err = fw.enc.AppendFrame(fw.frame[:0], payload, fw.compress)
	if err == nil {
		err = fw.WriteFrame(fw.frame)
	}
	if cap(fw.frame) > retainLimit {
		fw.frame = nil
	}
	return err
}

// WriteKeepAlive writes a {"KeepAlive":true} frame.
func (fw *FrameWriter) WriteKeepAlive() error {
	if fw.compress {
		return fw.WriteFrame(fw.enc.keepAlive)
	}
	return fw.WriteJSON([]byte(KeepAliveJSON))
}

// WriteFrame writes a complete frame from FrameEncoder.AppendFrame; its
// compression must match this stream's.
func (fw *FrameWriter) WriteFrame(frame []byte) error {
	if _, err := fw.w.Write(frame); err != nil {
		return fmt.Errorf("map frame: write: %w", err)
	}
	switch f := fw.w.(type) {
	case interface{ FlushError() error }:
		if err := f.FlushError(); err != nil {
			return fmt.Errorf("map frame: flush: %w", err)
		}
	case interface{ Flush() error }:
		if err := f.Flush(); err != nil {
			return fmt.Errorf("map frame: flush: %w", err)
		}
	case interface{ Flush() }:
		f.Flush()
	}
	return nil
}

// FrameReader reads the frames of one map stream (the client side). It
// reuses one zstd decoder and its buffers, and is not safe for concurrent use.
type FrameReader struct {
	r          io.Reader
	compressed bool
	limit      int
	dec        *zstd.Decoder // nil unless compressed

	wire []byte // the last frame as read
	out  []byte // the last decoded payload
}

// NewFrameReader returns a reader of frames from r. compressed says whether
// the request asked for zstd; limit caps a frame's JSON payload (<= 0 means
// DefaultMaxFrameSize): the wire length of a raw frame, the decoded size of
// a zstd one (whose wire length may exceed limit by zstd's worst-case
// expansion). Call Close when done.
func NewFrameReader(r io.Reader, compressed bool, limit int) (*FrameReader, error) {
	if limit <= 0 {
		limit = DefaultMaxFrameSize
	}
	fr := &FrameReader{r: r, compressed: compressed, limit: limit}
	if compressed {
		// The decoder's own limit also caps the window size, and encoders
		// declare windows of 1 KiB to several MiB even for tiny payloads, so
		// it cannot be lower than what the zstd spec says decoders should
		// support (8 MiB). Next enforces the limit exactly on the result.
		dec, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(max(limit, minDecoderMemory))),
		)
		if err != nil {
			return nil, fmt.Errorf("map frame reader: %w", err)
		}
		fr.dec = dec
	}
	return fr, nil
}

// Close releases the zstd decoder.
func (fr *FrameReader) Close() {
	if fr.dec != nil {
		fr.dec.Close()
		fr.dec = nil
	}
}

// Next reads one frame and returns its JSON payload, valid until the next
// call. At a clean end of stream (no partial header) it returns io.EOF.
func (fr *FrameReader) Next() ([]byte, error) {
	var hdr [FrameHeaderLen]byte
	if _, err := io.ReadFull(fr.r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, errors.New("map frame: stream ended inside a length prefix")
		}
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if limit := fr.wireLimit(); uint64(n) > limit {
		return nil, fmt.Errorf("map frame: length %d exceeds limit %d", n, limit)
	}
	var err error
	fr.wire, err = readN(fr.r, fr.wire[:0], int(n))
	if err != nil {
		return nil, fmt.Errorf("map frame: reading %d-byte payload: %w", n, err)
	}
	if !fr.compressed {
		return fr.wire, nil
	}
	if fr.dec == nil {
		return nil, errors.New("map frame: reader is closed")
	}
	if !bytes.HasPrefix(fr.wire, zstdMagic) {
		return nil, fmt.Errorf("map frame: %d-byte payload is not zstd although zstd was requested (server ignored Compress?)", n)
	}
	fr.out, err = fr.dec.DecodeAll(fr.wire, fr.out[:0])
	if err != nil {
		fr.out = nil
		return nil, fmt.Errorf("map frame: zstd: %w", err)
	}
	if len(fr.out) > fr.limit {
		fr.out = nil
		return nil, fmt.Errorf("map frame: decoded payload exceeds limit %d", fr.limit)
	}
	return fr.out, nil
}

// wireLimit is the largest acceptable frame length: the limit itself for raw
// frames; for zstd, the limit plus the format's worst-case expansion of
// incompressible data (block headers, frame header, checksum).
func (fr *FrameReader) wireLimit() uint64 {
	l := uint64(fr.limit)
	if !fr.compressed {
		return l
	}
	return l + l>>7 + 64
}

// ReadMapResponse reads and decodes one frame.
func (fr *FrameReader) ReadMapResponse() (*MapResponse, error) {
	payload, err := fr.Next()
	if err != nil {
		return nil, err
	}
	m := new(MapResponse)
	if err := json.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("map frame: decode MapResponse: %w", err)
	}
	return m, nil
}

// ReadFrame reads one frame from r and returns its JSON payload (a new
// slice), with limit as in NewFrameReader. It builds a decoder per call; use
// a FrameReader for a stream.
func ReadFrame(r io.Reader, compressed bool, limit int) ([]byte, error) {
	fr, err := NewFrameReader(r, compressed, limit)
	if err != nil {
		return nil, err
	}
	defer fr.Close()
	b, err := fr.Next()
	if err == io.EOF {
		return nil, errors.New("map frame: stream ended before a frame")
	}
	return b, err // fr's buffers are not reused after this call
}

// readN appends exactly n bytes from r to buf. It grows the buffer as data
// arrives instead of trusting n up front, so a peer announcing a large frame
// and then stalling costs little memory.
func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	const step = 1 << 20
	for n > 0 {
		chunk := min(n, step)
		buf = slices.Grow(buf, chunk)
		l := len(buf)
		if _, err := io.ReadFull(r, buf[l:l+chunk]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
		buf = buf[:l+chunk]
		n -= chunk
	}
	return buf, nil
}
