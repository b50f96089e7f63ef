package noise

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"weft.dev/weft/wire/key"
)

// DialConfig configures Dial.
type DialConfig struct {
	// URL is the login server, http:// or https://. Its path is ignored: the
	// upgrade always goes to /ts2021 at the host root.
	URL string
	// ServerKey is the server's Noise key, from GetServerKey.
	ServerKey key.MachinePublic
	// MachineKey is this device's machine key.
	MachineKey key.MachinePrivate
	// ProtocolVersion is the client's capability version.
	ProtocolVersion uint16
	// TLSConfig is used for https URLs; nil means the defaults. Its NextProtos
	// are ignored (the upgrade is HTTP/1.1). Certificate checks apply as
	// configured: unlike upstream, weft does not skip them for /ts2021.
	TLSConfig *tls.Config
	// NetDial, if set, opens the TCP connection instead of a net.Dialer.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Dial connects to the login server's /ts2021 endpoint at the URL's host and
// port (plain TCP for http, TLS for https; no port-80-first fallback, which
// is the caller's dial policy), upgrades, runs the Noise handshake and reads
// the server's optional early payload. ctx bounds all of it.
//
// To tell an early payload from HTTP/2, Dial waits for the server's first
// bytes; every known server (upstream, headscale, x/net/http2) sends its
// early payload or SETTINGS frame right away, without waiting for the client.
func Dial(ctx context.Context, cfg DialConfig) (*Conn, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("noise: dial: %w", err)
	}
	var port string
	switch u.Scheme {
	case "http":
		port = "80"
	case "https":
		port = "443"
	default:
		return nil, fmt.Errorf("noise: dial %q: scheme must be http or https", cfg.URL)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("noise: dial %q: no host", cfg.URL)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	addr := net.JoinHostPort(u.Hostname(), port)
	ci, err := StartClient(ClientConfig{
		MachineKey:      cfg.MachineKey,
		ServerKey:       cfg.ServerKey,
		ProtocolVersion: cfg.ProtocolVersion,
	})
	if err != nil {
		return nil, err
	}
	dial := cfg.NetDial
	if dial == nil {
		dial = new(net.Dialer).DialContext
	}
	conn, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("noise: dial %s: %w", addr, err)
	}
	c, err := upgrade(ctx, conn, u, cfg.TLSConfig, ci)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("noise: dial %s: %w", addr, ctxErr(ctx, err))
	}
	return c, nil
}

// upgrade runs TLS (for https), the HTTP upgrade, the handshake and the
// early-payload peek on conn.
func upgrade(ctx context.Context, conn net.Conn, u *url.URL, tlsConfig *tls.Config, ci *ClientInit) (*Conn, error) {
	stop := bindContext(ctx, conn)
	c, err := func() (*Conn, error) {
		if u.Scheme == "https" {
			tc := new(tls.Config)
			if tlsConfig != nil {
				tc = tlsConfig.Clone()
			}
			if tc.ServerName == "" {
				tc.ServerName = u.Hostname()
			}
			tc.NextProtos = nil
			tconn := tls.Client(conn, tc)
			if err := tconn.HandshakeContext(ctx); err != nil {
				return nil, fmt.Errorf("tls: %w", err)
			}
			conn = tconn
		}
		req := &http.Request{
			Method:     http.MethodPost,
			URL:        &url.URL{Scheme: "http", Host: u.Host, Path: Path},
			Host:       u.Host,
			Proto:      "HTTP/1.1",
			ProtoMajor: 1,
			ProtoMinor: 1,
			Header: http.Header{
				"Upgrade":       {UpgradeProtocol},
				"Connection":    {"upgrade"},
				HandshakeHeader: {base64.StdEncoding.EncodeToString(ci.msg[:])},
			},
		}
		if err := req.Write(conn); err != nil {
			return nil, fmt.Errorf("write upgrade request: %w", err)
		}
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, fmt.Errorf("read upgrade response: %w", err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			return nil, fmt.Errorf("upgrade refused: %s: %q (a reverse proxy must pass Upgrade: %s)",
				resp.Status, strings.TrimSpace(string(body)), UpgradeProtocol)
		}
		// Compared case-sensitively, as upstream clients do.
		if got := resp.Header.Get("Upgrade"); got != UpgradeProtocol {
			return nil, fmt.Errorf("upgrade response has Upgrade %q, want %q", got, UpgradeProtocol)
		}
		c, err := ci.Finish(withBuffered(conn, br))
		if err != nil {
			return nil, err
		}
		if err := c.readEarlyPayload(); err != nil {
			return nil, err
		}
		return c, nil
	}()
	if serr := stop(); err == nil && serr != nil {
		err = serr
	}
	return c, err
}

// maxKeyResponse caps the GET /key body, as upstream clients do.
const maxKeyResponse = 64 << 10

// GetServerKey fetches the server's Noise key with GET <loginURL>/key?v=capVersion
// (control.md §1.1). A nil client means a zero http.Client.
func GetServerKey(ctx context.Context, client *http.Client, loginURL string, capVersion int) (key.MachinePublic, error) {
	var zero key.MachinePublic
	u, err := url.Parse(loginURL)
	if err != nil {
		return zero, fmt.Errorf("noise: server key: %w", err)
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/key"
	u.RawPath = ""
	u.RawQuery = "v=" + strconv.Itoa(capVersion)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return zero, fmt.Errorf("noise: server key: %w", err)
	}
	if client == nil {
		client = new(http.Client)
	}
	resp, err := client.Do(req)
	if err != nil {
		return zero, fmt.Errorf("noise: server key: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeyResponse+1))
	if err != nil {
		return zero, fmt.Errorf("noise: server key from %s: %w", u.Redacted(), err)
	}
	if len(body) > maxKeyResponse {
		return zero, fmt.Errorf("noise: server key from %s: response exceeds %d bytes", u.Redacted(), maxKeyResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return zero, fmt.Errorf("noise: server key from %s: %s: %q", u.Redacted(), resp.Status, truncateText(body, 200))
	}
	var kr struct {
		Legacy key.MachinePublic `json:"legacyPublicKey"`
		Noise  key.MachinePublic `json:"publicKey"`
	}
	if err := json.Unmarshal(body, &kr); err != nil {
		// Very old servers answer with a bare hex legacy key (no Noise key).
		if s := strings.TrimSpace(string(body)); len(s) == 64 && isHex(s) {
			return zero, errTooOld
		}
		return zero, fmt.Errorf("noise: server key from %s: %w", u.Redacted(), err)
	}
	if kr.Noise.IsZero() {
		return zero, errTooOld
	}
	return kr.Noise, nil
}

var errTooOld = errors.New("noise: control server is too old; no noise key")

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

func truncateText(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
