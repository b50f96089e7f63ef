package noise

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

const (
	// UpgradeProtocol is the HTTP Upgrade token and WebSocket subprotocol of ts2021.
	UpgradeProtocol = "tailscale-control-protocol"
	// HandshakeHeader carries the base64 initiation in the upgrade request
	// (a header on the POST upgrade, a query parameter on the WebSocket path).
	HandshakeHeader = "X-Tailscale-Handshake"
	// Path is where clients send the upgrade, always at the host root.
	Path = "/ts2021"
)

const switchingProtocols = "HTTP/1.1 101 Switching Protocols\r\n" +
	"Upgrade: " + UpgradeProtocol + "\r\n" +
	"Connection: upgrade\r\n\r\n"

// AcceptHTTP serves a ts2021 upgrade request (control.md §2.2, §2.8). It
// answers malformed requests with 400 itself; on success it has hijacked the
// connection, sent the 101, the handshake response and (with
// cfg.EarlyPayload) the early payload in one write, and returns the Conn on
// which the caller runs HTTP/2. ctx bounds the handshake only; the returned
// Conn lives until closed. A rejected client (cfg.MinVersion) is sent a Noise
// error message after the 101 and its connection is closed.
func AcceptHTTP(ctx context.Context, w http.ResponseWriter, r *http.Request, cfg ServerConfig) (*Conn, error) {
	next := r.Header.Get("Upgrade")
	switch {
	case next == "":
		http.Error(w, "missing next protocol", http.StatusBadRequest)
		return nil, errors.New("noise: upgrade request has no Upgrade header (a reverse proxy may have dropped it)")
	case strings.EqualFold(next, "websocket"):
		return acceptWebSocket(ctx, w, r, cfg)
	case !strings.EqualFold(next, UpgradeProtocol):
		http.Error(w, "unknown next protocol", http.StatusBadRequest)
		return nil, fmt.Errorf("noise: unknown next protocol %q", next)
	}
	init, err := decodeInitiation(r.Header.Get(HandshakeHeader))
	if err != nil {
		http.Error(w, "invalid "+HandshakeHeader+" header", http.StatusBadRequest)
		return nil, err
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "make request over HTTP/1", http.StatusBadRequest)
		return nil, fmt.Errorf("noise: hijack: %w", err)
	}
	// The client sends nothing before it has read the 101, but whatever the
	// HTTP server read past the headers belongs to the Noise stream.
	conn = withBuffered(conn, brw.Reader)

	stop := bindContext(ctx, conn)
	c, reply, err := serverAccept(conn, init, cfg, cfg.EarlyPayload, rand.Reader)
	out := make([]byte, 0, len(switchingProtocols)+len(reply))
	out = append(append(out, switchingProtocols...), reply...)
	_, werr := conn.Write(out)
	if serr := stop(); err == nil {
		err = werr
		if err == nil {
			err = serr
		}
	}
	if err != nil {
		conn.Close()
		return nil, ctxErr(ctx, err)
	}
	return c, nil
}

// acceptWebSocket serves the WebSocket variant used by the js/wasm client:
// the initiation is in a query parameter and no early payload is sent
// (upstream controlhttpserver does the same).
func acceptWebSocket(ctx context.Context, w http.ResponseWriter, r *http.Request, cfg ServerConfig) (*Conn, error) {
	init, err := decodeInitiation(r.URL.Query().Get(HandshakeHeader))
	if err != nil {
		http.Error(w, "invalid "+HandshakeHeader+" parameter", http.StatusBadRequest)
		return nil, err
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{UpgradeProtocol},
		// Noise authenticates both ends and nothing rides on browser cookies,
		// so the same-origin check would protect nothing; upstream accepts
		// any origin too.
		OriginPatterns:  []string{"*"},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, fmt.Errorf("noise: websocket accept: %w", err)
	}
	if ws.Subprotocol() != UpgradeProtocol {
		ws.Close(websocket.StatusPolicyViolation, "client must speak the "+UpgradeProtocol+" subprotocol")
		return nil, fmt.Errorf("noise: websocket client did not offer subprotocol %q", UpgradeProtocol)
	}
	// The net.Conn outlives the handshake, so it must not die with ctx.
	conn := websocket.NetConn(context.WithoutCancel(ctx), ws, websocket.MessageBinary)

	stop := bindContext(ctx, conn)
	c, reply, err := serverAccept(conn, init, cfg, false, rand.Reader)
	_, werr := conn.Write(reply)
	if serr := stop(); err == nil {
		err = werr
		if err == nil {
			err = serr
		}
	}
	if err != nil {
		conn.Close()
		return nil, ctxErr(ctx, err)
	}
	return c, nil
}

// decodeInitiation decodes and validates the framing of the base64 initiation.
func decodeInitiation(s string) (*initiation, error) {
	if s == "" {
		return nil, fmt.Errorf("noise: missing %s", HandshakeHeader)
	}
	// Check the size before decoding so a huge value costs nothing.
	if len(s) != base64.StdEncoding.EncodedLen(initiationLen) {
		return nil, fmt.Errorf("noise: %s is %d characters, want %d", HandshakeHeader, len(s), base64.StdEncoding.EncodedLen(initiationLen))
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("noise: %s: %w", HandshakeHeader, err)
	}
	return parseInitiation(b)
}

// bufferedConn is a net.Conn whose first bytes were already read into buf.
// Only the Conn's reader (under readMu) reads it.
type bufferedConn struct {
	net.Conn
	buf []byte
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// withBuffered returns conn with br's buffered bytes in front, so that reads
// after an HTTP exchange bypass br (and its extra copy) from then on.
func withBuffered(conn net.Conn, br *bufio.Reader) net.Conn {
	n := br.Buffered()
	if n == 0 {
		return conn
	}
	b, _ := br.Peek(n)
	return &bufferedConn{Conn: conn, buf: bytes.Clone(b)}
}
