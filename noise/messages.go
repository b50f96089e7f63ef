package noise

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Message types of the ts2021 framing (control/controlbase/messages.go upstream).
const (
	msgTypeInitiation = 0x01
	msgTypeResponse   = 0x02
	msgTypeError      = 0x03
	msgTypeRecord     = 0x04
)

// Sizes of the handshake messages and transport records.
const (
	initiationHeaderLen = 5  // version(2) + type(1) + length(2)
	headerLen           = 3  // type(1) + length(2), all other messages
	keyLen              = 32 // Curve25519 public key
	tagLen              = 16 // ChaCha20-Poly1305 tag

	initiationPayloadLen = keyLen + keyLen + tagLen + tagLen // e, enc(s), tag
	initiationLen        = initiationHeaderLen + initiationPayloadLen
	responsePayloadLen   = keyLen + tagLen // e, tag
	responseLen          = headerLen + responsePayloadLen

	// maxRecordLen is the largest transport record on the wire, header included.
	maxRecordLen = 4096
	// maxCiphertextLen is the largest length a record header may announce.
	maxCiphertextLen = maxRecordLen - headerLen
	// maxPlaintextLen is the most plaintext one record carries.
	maxPlaintextLen = maxCiphertextLen - tagLen

	// maxErrorTextLen bounds the text of an error message (16-bit length).
	maxErrorTextLen = 1<<16 - 1
)

// Exported sizes, for callers that budget buffers or validate headers.
const (
	// InitiationLen is the size of the client's handshake initiation (101).
	InitiationLen = initiationLen
	// ResponseLen is the size of the server's handshake response (51).
	ResponseLen = responseLen
	// MaxPlaintextPerRecord is the most plaintext one transport record carries (4077).
	MaxPlaintextPerRecord = maxPlaintextLen
)

// ServerError is the text of a handshake error message (type 0x03) sent by
// the server instead of a response. The text is unauthenticated: treat it as
// a hint for the user, not as proof of anything.
type ServerError struct {
	Text string
}

func (e *ServerError) Error() string { return fmt.Sprintf("server error: %q", e.Text) }

// initiation is a validated 101-byte handshake initiation.
type initiation [initiationLen]byte

// parseInitiation validates the framing of an initiation message. It checks
// only sizes and the header; the cryptography is checked by the handshake.
func parseInitiation(b []byte) (*initiation, error) {
	if len(b) != initiationLen {
		return nil, fmt.Errorf("noise: initiation is %d bytes, want %d", len(b), initiationLen)
	}
	if b[2] != msgTypeInitiation {
		return nil, fmt.Errorf("noise: initiation has message type 0x%02x, want 0x%02x", b[2], msgTypeInitiation)
	}
	if n := binary.BigEndian.Uint16(b[3:5]); n != initiationPayloadLen {
		return nil, fmt.Errorf("noise: initiation announces %d payload bytes, want %d", n, initiationPayloadLen)
	}
	var m initiation
	copy(m[:], b)
	return &m, nil
}

func (m *initiation) version() uint16   { return binary.BigEndian.Uint16(m[0:2]) }
func (m *initiation) ephemeral() []byte { return m[5 : 5+keyLen] }
func (m *initiation) machineCiphertext() []byte {
	return m[5+keyLen : 5+keyLen+keyLen+tagLen]
}
func (m *initiation) tag() []byte { return m[initiationLen-tagLen:] }

// appendErrorMessage appends a type-3 error message carrying text, truncated
// to what a 16-bit length can announce.
func appendErrorMessage(dst []byte, text string) []byte {
	if len(text) > maxErrorTextLen {
		text = text[:maxErrorTextLen]
	}
	dst = append(dst, msgTypeError, 0, 0)
	binary.BigEndian.PutUint16(dst[len(dst)-2:], uint16(len(text)))
	return append(dst, text...)
}

var errCipherExhausted = errors.New("noise: nonce counter exhausted; reconnect")
