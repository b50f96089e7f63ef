package noise

import (
	"bytes"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
	"time"

	"weft.dev/weft/wire/key"
)

// bufConn is a net.Conn over an io.Reader and an io.Writer, for tests that
// feed a Conn exact bytes or capture what it writes.
type bufConn struct {
	r io.Reader
	w io.Writer
}

func (c *bufConn) Read(p []byte) (int, error) {
	if c.r == nil {
		return 0, io.EOF
	}
	return c.r.Read(p)
}

func (c *bufConn) Write(p []byte) (int, error) {
	if c.w == nil {
		return len(p), nil
	}
	return c.w.Write(p)
}

func (c *bufConn) Close() error                     { return nil }
func (c *bufConn) LocalAddr() net.Addr              { return testAddr{} }
func (c *bufConn) RemoteAddr() net.Addr             { return testAddr{} }
func (c *bufConn) SetDeadline(time.Time) error      { return nil }
func (c *bufConn) SetReadDeadline(time.Time) error  { return nil }
func (c *bufConn) SetWriteDeadline(time.Time) error { return nil }

type testAddr struct{}

func (testAddr) Network() string { return "test" }
func (testAddr) String() string  { return "test" }

// fixedKey returns a clamped private key derived from b, so that fuzz seeds
// stay valid across processes.
func fixedKey(b byte) key.MachinePrivate {
	var k [32]byte
	for i := range k {
		k[i] = b + byte(i)
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return key.MachinePrivateFromRaw32(k)
}

// detRand is a deterministic randomness source for ephemeral keys.
func detRand() io.Reader { return mrand.NewChaCha8([32]byte{'w', 'e', 'f', 't'}) }

// memPair performs a handshake in memory. Bytes the client writes land in
// c2s, which the server reads, and vice versa. With rnd set the handshake
// (and so every record) is deterministic.
type memPair struct {
	client, server *Conn
	c2s, s2c       *bytes.Buffer
}

func newMemPair(tb testing.TB, rnd io.Reader) *memPair {
	tb.Helper()
	if rnd == nil {
		rnd = detRand()
	}
	serverKey, machineKey := fixedKey(1), fixedKey(2)
	p := &memPair{c2s: new(bytes.Buffer), s2c: new(bytes.Buffer)}
	ci, err := startClient(ClientConfig{MachineKey: machineKey, ServerKey: serverKey.Public(), ProtocolVersion: 142}, rnd)
	if err != nil {
		tb.Fatal(err)
	}
	init, err := parseInitiation(ci.Initiation())
	if err != nil {
		tb.Fatal(err)
	}
	server, reply, err := serverAccept(&bufConn{r: p.c2s, w: p.s2c}, init, ServerConfig{PrivateKey: serverKey}, false, rnd)
	if err != nil {
		tb.Fatal(err)
	}
	p.s2c.Write(reply)
	client, err := ci.Finish(&bufConn{r: p.s2c, w: p.c2s})
	if err != nil {
		tb.Fatal(err)
	}
	p.client, p.server = client, server
	return p
}

func pattern(n, seed int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + seed)
	}
	return b
}
