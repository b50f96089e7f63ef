package noise

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"weft.dev/weft/wire/key"
)

// Conn is an established ts2021 connection: a net.Conn whose bytes travel in
// encrypted transport records. One Read and one Write may run concurrently
// (HTTP/2 does this); concurrent Writes are serialized, as are concurrent Reads.
//
// Protocol violations (bad record type, oversize header, failed decryption)
// and write errors are permanent: every later call returns the same error.
type Conn struct {
	conn    net.Conn
	version uint16
	peer    key.MachinePublic
	hash    [32]byte
	early   []byte // set by Dial before the Conn is handed out; read-only after

	// Record buffers come from a pool and are held only while a record is
	// being read or its plaintext is unread, so an idle connection (a
	// server holds thousands, each with a Read pending) costs a few bytes
	// rather than three 4 KiB arrays.
	readMu    sync.Mutex // guards the fields below
	rx        cipherState
	head      [headerLen]byte // the next record's header: head[:hlen]
	hlen      int
	body      *[maxRecordLen]byte // the record body being read: body[:blen], nil between records
	blen      int
	unread    []byte              // decrypted bytes not yet returned
	unreadBuf *[maxRecordLen]byte // the pooled buffer unread points into, if any
	rerr      error               // sticky protocol error

	writeMu sync.Mutex // guards the fields below
	tx      cipherState
	werr    error // sticky write error
}

// recordPool holds record-sized buffers shared by all connections.
var recordPool = sync.Pool{New: func() any { return new([maxRecordLen]byte) }}

func newConn(conn net.Conn, version uint16, peer key.MachinePublic, hash, txKey, rxKey [32]byte) (*Conn, error) {
	tx, err := newAEAD(txKey)
	if err != nil {
		return nil, err
	}
	rx, err := newAEAD(rxKey)
	if err != nil {
		return nil, err
	}
	return &Conn{
		conn:    conn,
		version: version,
		peer:    peer,
		hash:    hash,
		rx:      cipherState{aead: rx},
		tx:      cipherState{aead: tx},
	}, nil
}

// PeerMachineKey returns the peer's static key. On the server it is the
// authenticated client machine key, the identity every /machine/* request on
// this connection must be checked against; on the client it is the server key.
func (c *Conn) PeerMachineKey() key.MachinePublic { return c.peer }

// ProtocolVersion returns the client's protocol (capability) version from the
// initiation.
func (c *Conn) ProtocolVersion() uint16 { return c.version }

// HandshakeHash returns the final Noise handshake hash, equal on both sides
// (usable for channel binding).
func (c *Conn) HandshakeHash() [32]byte { return c.hash }

// EarlyPayload returns the JSON early payload the server sent before HTTP/2,
// or nil if it sent none. Only connections from Dial look for one.
func (c *Conn) EarlyPayload() []byte { return c.early }

// Read reads decrypted bytes.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	for len(c.unread) == 0 {
		c.releaseUnreadLocked()
		if err := c.readRecordLocked(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.unread)
	c.unread = c.unread[n:]
	if len(c.unread) == 0 {
		c.releaseUnreadLocked()
	}
	return n, nil
}

func (c *Conn) releaseUnreadLocked() {
	if c.unreadBuf != nil {
		recordPool.Put(c.unreadBuf)
		c.unreadBuf = nil
	}
}

// readRecordLocked reads and decrypts one record into c.unread. It reads
// the header, then exactly the body, so no bytes of the next record need
// holding; a read deadline that fires mid-record loses nothing and is not
// permanent.
func (c *Conn) readRecordLocked() error {
	if c.rerr != nil {
		return c.rerr
	}
	for c.hlen < headerLen {
		k, err := c.conn.Read(c.head[c.hlen:])
		c.hlen += k
		if err != nil {
			if err == io.EOF && c.hlen > 0 {
				err = io.ErrUnexpectedEOF // the stream ended inside a record
			}
			return err
		}
	}
	if c.head[0] != msgTypeRecord {
		c.rerr = fmt.Errorf("noise: unexpected message type 0x%02x, want transport record 0x%02x", c.head[0], msgTypeRecord)
		return c.rerr
	}
	n := int(binary.BigEndian.Uint16(c.head[1:headerLen]))
	if n > maxCiphertextLen {
		c.rerr = fmt.Errorf("noise: record announces %d bytes, limit %d", n, maxCiphertextLen)
		return c.rerr
	}
	if n < tagLen {
		c.rerr = fmt.Errorf("noise: record of %d bytes is shorter than its tag", n)
		return c.rerr
	}
	if c.body == nil {
		c.body = recordPool.Get().(*[maxRecordLen]byte)
		c.blen = 0
	}
	for c.blen < n {
		k, err := c.conn.Read(c.body[c.blen:n])
		c.blen += k
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	nonce, err := c.rx.nextNonce()
	if err != nil {
		c.rerr = err
		return err
	}
	// Decrypt in place.
	plain, err := c.rx.aead.Open(c.body[:0], nonce[:], c.body[:n], nil)
	if err != nil {
		c.rerr = fmt.Errorf("noise: decrypt record %d: %w", c.rx.n-1, err)
		return c.rerr
	}
	c.hlen, c.blen = 0, 0
	c.unread, c.unreadBuf, c.body = plain, c.body, nil
	return nil
}

// unreadLocked puts b back in front of the unread plaintext.
func (c *Conn) unreadLocked(b []byte) {
	c.unread = append(append([]byte(nil), b...), c.unread...)
	c.releaseUnreadLocked() // unread is a fresh copy now
}

// Write encrypts p into as many records as needed and writes them.
func (c *Conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	sent := 0
	buf := recordPool.Get().(*[maxRecordLen]byte)
	defer recordPool.Put(buf)
	for len(p) > 0 {
		chunk := p[:min(len(p), maxPlaintextLen)]
		rec, err := c.sealLocked(buf[:0], chunk)
		if err == nil {
			_, err = c.conn.Write(rec)
		}
		if err != nil {
			// A partly written record cannot be resumed: the nonce is spent.
			c.werr = err
			return sent, err
		}
		sent += len(chunk)
		p = p[len(chunk):]
	}
	return sent, nil
}

// sealLocked appends one record carrying chunk (at most maxPlaintextLen bytes).
func (c *Conn) sealLocked(dst, chunk []byte) ([]byte, error) {
	nonce, err := c.tx.nextNonce()
	if err != nil {
		return dst, err
	}
	dst = append(dst, msgTypeRecord, 0, 0)
	binary.BigEndian.PutUint16(dst[len(dst)-2:], uint16(len(chunk)+tagLen))
	return c.tx.aead.Seal(dst, nonce[:], chunk, nil), nil
}

// appendRecords appends p as records to dst without writing them, so that a
// server can send them in the same write as its handshake response.
func (c *Conn) appendRecords(dst, p []byte) ([]byte, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.werr != nil {
		return dst, c.werr
	}
	for len(p) > 0 {
		chunk := p[:min(len(p), maxPlaintextLen)]
		var err error
		if dst, err = c.sealLocked(dst, chunk); err != nil {
			c.werr = err
			return dst, err
		}
		p = p[len(chunk):]
	}
	return dst, nil
}

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.conn.Close() }

// LocalAddr returns the underlying connection's local address.
func (c *Conn) LocalAddr() net.Addr { return c.conn.LocalAddr() }

// RemoteAddr returns the underlying connection's remote address.
func (c *Conn) RemoteAddr() net.Addr { return c.conn.RemoteAddr() }

// SetDeadline sets the underlying connection's deadlines.
func (c *Conn) SetDeadline(t time.Time) error { return c.conn.SetDeadline(t) }

// SetReadDeadline sets the underlying connection's read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the underlying connection's write deadline. A write
// that times out mid-record breaks the connection for good.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.conn.SetWriteDeadline(t) }

var _ net.Conn = (*Conn)(nil)
