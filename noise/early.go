package noise

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"

	"weft.dev/weft/wire/key"
)

// The early payload (control.md §2.6, "EarlyNoise" upstream) is the first
// plaintext the server sends: magic, a 4-byte big-endian length and JSON. The
// magic starts with 0xFF so it can never be mistaken for an HTTP/2 frame
// header, which is how the client tells the two apart.
var earlyMagic = [5]byte{0xff, 0xff, 0xff, 'T', 'S'}

const (
	earlyHeaderLen = len(earlyMagic) + 4
	// maxEarlyPayloadLen is the client's cap on the JSON (upstream uses 10 MiB).
	maxEarlyPayloadLen = 10 << 20
)

// earlyNoise is the JSON of the early payload.
type earlyNoise struct {
	NodeKeyChallenge key.ChallengePublic `json:"nodeKeyChallenge"`
}

// appendEarlyPayload appends the early payload, as transport records, to dst.
func (c *Conn) appendEarlyPayload(dst []byte) ([]byte, error) {
	js, err := json.Marshal(earlyNoise{NodeKeyChallenge: key.NewChallenge()})
	if err != nil {
		return dst, fmt.Errorf("noise: early payload: %w", err)
	}
	p := make([]byte, 0, earlyHeaderLen+len(js))
	p = append(p, earlyMagic[:]...)
	p = binary.BigEndian.AppendUint32(p, uint32(len(js)))
	p = append(p, js...)
	return c.appendRecords(dst, p)
}

// readEarlyPayload peeks at the first earlyHeaderLen plaintext bytes. With
// the magic, it consumes the payload and keeps its JSON for EarlyPayload;
// otherwise the bytes are the start of the server's HTTP/2 SETTINGS frame
// and are put back for the next Read.
func (c *Conn) readEarlyPayload() error {
	var hdr [earlyHeaderLen]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("noise: read first server bytes: %w", err)
	}
	if !bytes.Equal(hdr[:len(earlyMagic)], earlyMagic[:]) {
		c.readMu.Lock()
		c.unreadLocked(hdr[:])
		c.readMu.Unlock()
		return nil
	}
	n := binary.BigEndian.Uint32(hdr[len(earlyMagic):])
	if n > maxEarlyPayloadLen {
		return fmt.Errorf("noise: early payload of %d bytes exceeds %d", n, maxEarlyPayloadLen)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(c, js); err != nil {
		return fmt.Errorf("noise: read early payload: %w", err)
	}
	var en earlyNoise
	if err := json.Unmarshal(js, &en); err != nil {
		return fmt.Errorf("noise: early payload: %w", err)
	}
	c.early = js
	return nil
}
