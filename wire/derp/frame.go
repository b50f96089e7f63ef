package derp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"weft.dev/weft/wire/key"
)

// Protocol constants (derp-disco.md §1.1).
const (
	// Magic starts the ServerKey frame: "DERP" followed by U+1F511 in UTF-8.
	Magic = "DERP🔑"
	// ProtocolVersion is the DERP version spoken (v2: RecvPacket carries the source key).
	ProtocolVersion = 2
	// FrameHeaderLen is the type byte plus the 4-byte big-endian payload length.
	FrameHeaderLen = 5
	// KeyLen is the length of a raw node public key.
	KeyLen = 32
	// NonceLen is the NaCl box nonce length.
	NonceLen = 24
	// MaxPacketSize caps the packet bytes of Send/Recv/ForwardPacket (keys not counted).
	MaxPacketSize = 64 << 10
	// MaxInfoLen caps a ServerInfo payload beyond its nonce and box overhead.
	MaxInfoLen = 1 << 20
	// MinClientInfoLen is the smallest ClientInfo frame the server reads.
	MinClientInfoLen = KeyLen + NonceLen
	// MaxClientInfoLen is the largest ClientInfo frame the server reads
	// (the official server's cap against JSON resource exhaustion).
	MaxClientInfoLen = 256 << 10
	// MaxPingLen is the largest Ping payload the server accepts; the first
	// 8 bytes are echoed, the rest ignored.
	MaxPingLen = 1000
	// PingLen is the Ping/Pong data length.
	PingLen = 8
	// MaxFrameLen caps any frame either side is willing to read, including
	// skipped unknown frames. The official client errors above 1 MiB.
	MaxFrameLen = 1 << 20
	// KeepAliveInterval is how often servers send KeepAlive (plus jitter).
	KeepAliveInterval = 60 * time.Second
	// PeerPresentLen is the PeerPresent payload the current server emits.
	PeerPresentLen = KeyLen + 16 + 2 + 1
	// PeerGoneLen is the PeerGone payload with its reason byte.
	PeerGoneLen = KeyLen + 1
	// RestartingLen is the Restarting payload length.
	RestartingLen = 8
)

// HTTP header names of the DERP upgrade.
const (
	FastStartHeader  = "Derp-Fast-Start"
	IdealNodeHeader  = "Ideal-Node"
	VersionHeader    = "Derp-Version"
	PublicKeyHeader  = "Derp-Public-Key"
	ChallengeHeader  = "X-Tailscale-Challenge" // /generate_204 request
	ResponseHeader   = "X-Tailscale-Response"  // /generate_204 answer
	WebSocketSubprot = "derp"
)

// FrameType is the first byte of a frame header.
type FrameType byte

// Frame types (derp-disco.md §1.5). There are no types 0x0b–0x0f.
const (
	FrameServerKey     FrameType = 0x01
	FrameClientInfo    FrameType = 0x02
	FrameServerInfo    FrameType = 0x03
	FrameSendPacket    FrameType = 0x04
	FrameRecvPacket    FrameType = 0x05
	FrameKeepAlive     FrameType = 0x06
	FrameNotePreferred FrameType = 0x07
	FramePeerGone      FrameType = 0x08
	FramePeerPresent   FrameType = 0x09
	FrameForwardPacket FrameType = 0x0a
	FrameWatchConns    FrameType = 0x10
	FrameClosePeer     FrameType = 0x11
	FramePing          FrameType = 0x12
	FramePong          FrameType = 0x13
	FrameHealth        FrameType = 0x14
	FrameRestarting    FrameType = 0x15
)

var frameNames = [...]string{
	FrameServerKey: "ServerKey", FrameClientInfo: "ClientInfo", FrameServerInfo: "ServerInfo",
	FrameSendPacket: "SendPacket", FrameRecvPacket: "RecvPacket", FrameKeepAlive: "KeepAlive",
	FrameNotePreferred: "NotePreferred", FramePeerGone: "PeerGone", FramePeerPresent: "PeerPresent",
	FrameForwardPacket: "ForwardPacket", FrameWatchConns: "WatchConns", FrameClosePeer: "ClosePeer",
	FramePing: "Ping", FramePong: "Pong", FrameHealth: "Health", FrameRestarting: "Restarting",
}

// String returns the frame type's name, or its hex value when unknown.
func (t FrameType) String() string {
	if int(t) < len(frameNames) && frameNames[t] != "" {
		return frameNames[t]
	}
	return fmt.Sprintf("FrameType(0x%02x)", byte(t))
}

// Errors of the frame reader.
var (
	ErrFrameTooLarge = errors.New("derp: frame exceeds size limit")
	ErrShortFrame    = errors.New("derp: frame payload too short")
)

// PutHeader writes a frame header into b[:FrameHeaderLen].
func PutHeader(b []byte, t FrameType, n uint32) {
	_ = b[FrameHeaderLen-1]
	b[0] = byte(t)
	binary.BigEndian.PutUint32(b[1:], n)
}

// AppendHeader appends a frame header to b.
func AppendHeader(b []byte, t FrameType, n uint32) []byte {
	return binary.BigEndian.AppendUint32(append(b, byte(t)), n)
}

// ParseHeader decodes a frame header from b[:FrameHeaderLen].
func ParseHeader(b []byte) (FrameType, uint32) {
	_ = b[FrameHeaderLen-1]
	return FrameType(b[0]), binary.BigEndian.Uint32(b[1:])
}

// ReadHeader reads one frame header without allocating.
func ReadHeader(br *bufio.Reader) (FrameType, uint32, error) {
	h, err := br.Peek(FrameHeaderLen)
	if err != nil {
		if err == io.EOF && len(h) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return 0, 0, err
	}
	t, n := ParseHeader(h)
	br.Discard(FrameHeaderLen)
	return t, n, nil
}

// ReadFrame reads a whole frame whose payload must not exceed max bytes. The
// payload is read into buf, which is grown (once, to the frame length) when
// too small; the returned slice aliases it. On ErrFrameTooLarge the payload
// is left unread: the stream is unusable and the caller should disconnect.
func ReadFrame(br *bufio.Reader, max uint32, buf []byte) (FrameType, []byte, error) {
	t, n, err := ReadHeader(br)
	if err != nil {
		return 0, nil, err
	}
	if n > max {
		return t, nil, fmt.Errorf("%w: %s of %d bytes, limit %d", ErrFrameTooLarge, t, n, max)
	}
	if uint32(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(br, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return t, nil, err
	}
	return t, buf, nil
}

// WriteFrame writes a frame whose payload is the concatenation of parts. It
// does not flush, so several frames can share one write.
func WriteFrame(bw *bufio.Writer, t FrameType, parts ...[]byte) error {
	var n int
	for _, p := range parts {
		n += len(p)
	}
	if n > MaxFrameLen*10 {
		return fmt.Errorf("%w: writing %s of %d bytes", ErrFrameTooLarge, t, n)
	}
	if err := WriteHeader(bw, t, uint32(n)); err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := bw.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// WriteHeader writes a frame header without allocating (a stack array passed
// to bufio.Writer.Write would escape).
func WriteHeader(bw *bufio.Writer, t FrameType, n uint32) error {
	if bw.Available() >= FrameHeaderLen {
		_, err := bw.Write(AppendHeader(bw.AvailableBuffer(), t, n))
		return err
	}
	if err := bw.WriteByte(byte(t)); err != nil {
		return err
	}
	for i := 3; i >= 0; i-- {
		if err := bw.WriteByte(byte(n >> (8 * i))); err != nil {
			return err
		}
	}
	return nil
}

// WriteKey writes a raw key without allocating.
func WriteKey(bw *bufio.Writer, k key.NodePublic) error {
	if bw.Available() >= KeyLen {
		_, err := bw.Write(AppendKey(bw.AvailableBuffer(), k))
		return err
	}
	r := k.Raw32()
	for _, b := range r {
		if err := bw.WriteByte(b); err != nil {
			return err
		}
	}
	return nil
}
