package localapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"weft.dev/weft/node/ipn"
	"weft.dev/weft/wire/ctrl"
)

// Client talks to weftd's LocalAPI over its unix socket.
type Client struct {
	// Socket is the daemon's socket path.
	Socket string
	// Dial, if set, replaces dialing Socket (tests).
	Dial func(ctx context.Context) (net.Conn, error)

	hc *http.Client
}

// Error is a non-2xx LocalAPI answer.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// IsAccessDenied reports whether err is a permission refusal.
func IsAccessDenied(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusForbidden
}

// ErrDaemonNotRunning is returned when the socket cannot be reached.
var ErrDaemonNotRunning = errors.New("failed to connect to local weftd process; it doesn't appear to be running")

func (c *Client) client() *http.Client {
	if c.hc != nil {
		return c.hc
	}
	dial := c.Dial
	if dial == nil {
		dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", c.Socket)
		}
	}
	c.hc = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
	}}
	return c.hc
}

// do sends a request; out, if non-nil, receives the JSON answer.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	res, err := c.send(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if out == nil {
		io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("localapi %s: decoding answer: %w", path, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://local-weftd.sock/localapi/v0/"+path, r)
	if err != nil {
		return nil, err
	}
	res, err := c.client().Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w (socket %s): %v", ErrDaemonNotRunning, c.Socket, err)
	}
	if res.StatusCode/100 != 2 {
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return nil, &Error{Status: res.StatusCode, Msg: msg}
	}
	return res, nil
}

// Status returns the full status.
func (c *Client) Status(ctx context.Context) (*ipn.Status, error) {
	var st ipn.Status
	return &st, c.do(ctx, "GET", "status", nil, &st)
}

// StatusWithoutPeers returns the status without peers.
func (c *Client) StatusWithoutPeers(ctx context.Context) (*ipn.Status, error) {
	var st ipn.Status
	return &st, c.do(ctx, "GET", "status?peers=false", nil, &st)
}

// Prefs returns the current prefs.
func (c *Client) Prefs(ctx context.Context) (*ipn.Prefs, error) {
	var p ipn.Prefs
	return &p, c.do(ctx, "GET", "prefs", nil, &p)
}

// EditPrefs applies a partial change.
func (c *Client) EditPrefs(ctx context.Context, mp *ipn.MaskedPrefs) (*ipn.Prefs, error) {
	var p ipn.Prefs
	return &p, c.do(ctx, "PATCH", "prefs", mp, &p)
}

// Start runs `up`.
func (c *Client) Start(ctx context.Context, req StartRequest) error {
	return c.do(ctx, "POST", "start", req, nil)
}

// StartLoginInteractive starts an interactive login.
func (c *Client) StartLoginInteractive(ctx context.Context) error {
	return c.do(ctx, "POST", "login-interactive", nil, nil)
}

// Logout logs out.
func (c *Client) Logout(ctx context.Context) error { return c.do(ctx, "POST", "logout", nil, nil) }

// WhoIs looks up an IP or ip:port.
func (c *Client) WhoIs(ctx context.Context, addr string) (*ipn.WhoIsResponse, error) {
	var r ipn.WhoIsResponse
	return &r, c.do(ctx, "GET", "whois?addr="+url.QueryEscape(addr), nil, &r)
}

// Ping pings ip.
func (c *Client) Ping(ctx context.Context, ip netip.Addr, typ string) (*ipn.PingResult, error) {
	var r ipn.PingResult
	return &r, c.do(ctx, "POST", "ping?ip="+url.QueryEscape(ip.String())+"&type="+url.QueryEscape(typ), nil, &r)
}

// Netcheck measures the network through the daemon's engine.
func (c *Client) Netcheck(ctx context.Context) (*ipn.NetcheckReport, error) {
	var r ipn.NetcheckReport
	return &r, c.do(ctx, "GET", "netcheck", nil, &r)
}

// DebugAction runs a debug action on the daemon's engine ("restun",
// "rebind").
func (c *Client) DebugAction(ctx context.Context, action string) error {
	return c.do(ctx, "POST", "debug?action="+url.QueryEscape(action), nil, nil)
}

// Raw returns the body of a GET (metrics, goroutines).
func (c *Client) Raw(ctx context.Context, path string) ([]byte, error) {
	res, err := c.send(ctx, "GET", path, nil)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

// Profiles lists the login profiles.
func (c *Client) Profiles(ctx context.Context) ([]ipn.LoginProfile, error) {
	var ps []ipn.LoginProfile
	return ps, c.do(ctx, "GET", "profiles/", nil, &ps)
}

// CurrentProfile returns the profile in use.
func (c *Client) CurrentProfile(ctx context.Context) (*ipn.LoginProfile, error) {
	var p ipn.LoginProfile
	return &p, c.do(ctx, "GET", "profiles/current", nil, &p)
}

// NewProfile switches to a new empty profile.
func (c *Client) NewProfile(ctx context.Context) (*ipn.LoginProfile, error) {
	var p ipn.LoginProfile
	return &p, c.do(ctx, "PUT", "profiles/", nil, &p)
}

// SwitchProfile switches to the profile named by an ID, login name,
// nickname or tailnet.
func (c *Client) SwitchProfile(ctx context.Context, name string) (*ipn.LoginProfile, error) {
	var p ipn.LoginProfile
	return &p, c.do(ctx, "POST", "profiles/"+url.PathEscape(name), nil, &p)
}

// Hostinfo returns what the daemon sends to control.
func (c *Client) Hostinfo(ctx context.Context) (*ctrl.Hostinfo, error) {
	var h ctrl.Hostinfo
	return &h, c.do(ctx, "GET", "hostinfo", nil, &h)
}

// DERPMap returns the current DERP map.
func (c *Client) DERPMap(ctx context.Context) (*ctrl.DERPMap, error) {
	var m ctrl.DERPMap
	return &m, c.do(ctx, "GET", "derpmap", nil, &m)
}

// LocalCreds returns how the daemon sees the caller.
func (c *Client) LocalCreds(ctx context.Context) (*LocalCreds, error) {
	var lc LocalCreds
	return &lc, c.do(ctx, "GET", "debug-local-creds", nil, &lc)
}

// Watcher reads a notification stream.
type Watcher struct {
	body io.ReadCloser
	dec  *json.Decoder
}

// WatchIPNBus opens the notification stream.
func (c *Client) WatchIPNBus(ctx context.Context, mask ipn.NotifyWatchOpt) (*Watcher, error) {
	res, err := c.send(ctx, "GET", "watch-ipn-bus?mask="+strconv.FormatUint(uint64(mask), 10), nil)
	if err != nil {
		return nil, err
	}
	return &Watcher{body: res.Body, dec: json.NewDecoder(bufio.NewReader(res.Body))}, nil
}

// Next returns the next notification.
func (w *Watcher) Next() (*ipn.Notify, error) {
	var n ipn.Notify
	if err := w.dec.Decode(&n); err != nil {
		return nil, err
	}
	return &n, nil
}

// Close ends the stream.
func (w *Watcher) Close() error { return w.body.Close() }
