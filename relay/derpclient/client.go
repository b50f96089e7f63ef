package derpclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// DialFunc dials a TCP connection.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options tunes Dial. The zero value is a regular client.
type Options struct {
	// MeshKey, when set, logs in as a mesh peer.
	MeshKey derp.MeshKey
	// IsProber marks the client as a monitoring prober.
	IsProber bool
	// AppName is sent in ClientInfo (stats only).
	AppName string
	// TLSConfig is used for https and wss URLs; ServerName defaults to the URL host.
	TLSConfig *tls.Config
	// Dial replaces the TCP dialer.
	Dial DialFunc
	// Header adds request headers (for example derp.IdealNodeHeader).
	Header http.Header
	// HandshakeTimeout bounds connect + login when ctx has no deadline; default 10s.
	HandshakeTimeout time.Duration
}

// Client is one DERP connection. Send and the other write methods may be
// called concurrently; Recv must be called from one goroutine.
type Client struct {
	nc         net.Conn
	br         *bufio.Reader
	priv       key.NodePrivate
	pub        key.NodePublic
	serverKey  key.NodePublic
	serverInfo derp.ServerInfo
	closeOnce  sync.Once

	pending atomic.Int32 // writers waiting for wmu; the last one flushes
	wmu     sync.Mutex
	bw      *bufio.Writer // guarded by wmu

	rbuf []byte // Recv-owned
}

// Dial connects to a DERP server at url (http, https, ws or wss; the path
// is normally /derp) and logs in with priv. It returns once the server has
// accepted the client (ServerInfo received).
func Dial(ctx context.Context, url string, priv key.NodePrivate) (*Client, error) {
	return DialOptions(ctx, url, priv, Options{})
}

// DialOptions is Dial with options.
func DialOptions(ctx context.Context, rawURL string, priv key.NodePrivate, opts Options) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("derpclient: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		d := opts.HandshakeTimeout
		if d <= 0 {
			d = 10 * time.Second
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	var nc net.Conn
	var br *bufio.Reader
	switch u.Scheme {
	case "http", "https":
		nc, br, err = dialUpgrade(ctx, u, opts)
	case "ws", "wss":
		nc, err = dialWebSocket(ctx, u, opts)
		if err == nil {
			br = bufio.NewReaderSize(nc, 32<<10)
		}
	default:
		return nil, fmt.Errorf("derpclient: unsupported URL scheme %q", u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("derpclient: connect %s: %w", u.Redacted(), err)
	}
	c := &Client{nc: nc, br: br, priv: priv, pub: priv.Public(), bw: bufio.NewWriterSize(nc, 64<<10)}
	if err := c.login(ctx, opts); err != nil {
		nc.Close()
		return nil, fmt.Errorf("derpclient: login to %s: %w", u.Redacted(), err)
	}
	return c, nil
}

func dialTCP(ctx context.Context, u *url.URL, opts Options) (net.Conn, error) {
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	dial := opts.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		return nc, nil
	}
	cfg := opts.TLSConfig.Clone()
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	cfg.NextProtos = nil // DERP is HTTP/1.1 only; never offer h2
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return tc, nil
}

func dialUpgrade(ctx context.Context, u *url.URL, opts Options) (net.Conn, *bufio.Reader, error) {
	nc, err := dialTCP(ctx, u, opts)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	path := u.RequestURI()
	if u.Path == "" {
		path = "/derp"
	}
	var req strings.Builder
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: DERP\r\nConnection: Upgrade\r\nUser-Agent: weft-derpclient\r\n", path, u.Host)
	for k, vs := range opts.Header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(nc, req.String()); err != nil {
		nc.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, 32<<10)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<10))
		res.Body.Close()
		nc.Close()
		return nil, nil, fmt.Errorf("unexpected HTTP response %s: %s", res.Status, strings.TrimSpace(string(body)))
	}
	if err := ctx.Err(); err != nil {
		nc.Close()
		return nil, nil, err
	}
	nc.SetDeadline(time.Time{})
	return nc, br, nil
}

func dialWebSocket(ctx context.Context, u *url.URL, opts Options) (net.Conn, error) {
	tr := &http.Transport{TLSClientConfig: opts.TLSConfig.Clone()}
	if opts.Dial != nil {
		tr.DialContext = opts.Dial
	}
	wc, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		HTTPHeader:   opts.Header,
		Subprotocols: []string{derp.WebSocketSubprot},
	})
	if err != nil {
		return nil, err
	}
	wc.SetReadLimit(derp.MaxFrameLen + derp.FrameHeaderLen)
	// The NetConn lives beyond the dial context.
	return websocket.NetConn(context.Background(), wc, websocket.MessageBinary), nil
}

func (c *Client) login(ctx context.Context, opts Options) error {
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
	}
	ft, p, err := derp.ReadFrame(c.br, 1<<10, nil)
	if err != nil {
		return fmt.Errorf("read server key: %w", err)
	}
	if ft != derp.FrameServerKey {
		return fmt.Errorf("first frame is %v, want ServerKey", ft)
	}
	if c.serverKey, err = derp.ParseServerKey(p); err != nil {
		return err
	}
	info := derp.ClientInfo{
		MeshKey: opts.MeshKey, Version: derp.ProtocolVersion, CanAckPings: true,
		IsProber: opts.IsProber, AppName: opts.AppName,
	}
	ci, err := derp.SealClientInfo(nil, c.priv, c.serverKey, info)
	if err != nil {
		return err
	}
	if err := c.writeFrame(derp.FrameClientInfo, ci); err != nil {
		return fmt.Errorf("send client info: %w", err)
	}
	for {
		ft, p, err := derp.ReadFrame(c.br, derp.MaxFrameLen, nil)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("server closed the connection (client rejected?)")
			}
			return fmt.Errorf("read server info: %w", err)
		}
		if ft != derp.FrameServerInfo {
			continue
		}
		if c.serverInfo, err = derp.OpenServerInfo(c.priv, c.serverKey, p); err != nil {
			return err
		}
		break
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.nc.SetDeadline(time.Time{})
	return nil
}

// ServerPublicKey returns the server's DERP key.
func (c *Client) ServerPublicKey() key.NodePublic { return c.serverKey }

// ServerInfo returns what the server sent at login.
func (c *Client) ServerInfo() derp.ServerInfo { return c.serverInfo }

// PublicKey returns the client's own key.
func (c *Client) PublicKey() key.NodePublic { return c.pub }

// LocalAddr returns the local address of the connection.
func (c *Client) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Close closes the connection; a blocked Recv returns an error.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() { err = c.nc.Close() })
	return err
}

// SetReadDeadline sets the deadline of Recv.
func (c *Client) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }
