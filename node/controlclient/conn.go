package controlclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"weft.dev/weft/noise"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// dialTimeout bounds the TCP connect, upgrade and handshake, as upstream
// (control/ts2021/client.go) does when there is no dial plan.
const dialTimeout = 10 * time.Second

// maxRegisterResponse caps a decoded register answer (upstream: 1 MiB).
const maxRegisterResponse = 1 << 20

// noiseClient holds one Noise + HTTP/2 connection to control and redials
// when it breaks. Every request multiplexes on the same connection, as
// upstream's MaxConnsPerHost = 1 transport does.
type noiseClient struct {
	serverURL  string
	machineKey key.MachinePrivate
	capVer     ctrl.CapabilityVersion
	httpClient *http.Client
	tlsConfig  *tls.Config
	netDial    func(ctx context.Context, network, addr string) (net.Conn, error)
	log        *slog.Logger

	mu sync.Mutex
	// guarded by mu:
	serverKey key.MachinePublic
	conn      *noise.Conn
	cc        *http2.ClientConn
	early     []byte // early payload JSON of the current connection
}

// clientConn returns a usable HTTP/2 connection, dialing if needed.
func (nc *noiseClient) clientConn(ctx context.Context) (*http2.ClientConn, error) {
	nc.mu.Lock()
	if nc.cc != nil && nc.cc.CanTakeNewRequest() {
		cc := nc.cc
		nc.mu.Unlock()
		return cc, nil
	}
	sk := nc.serverKey
	nc.mu.Unlock()

	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if sk.IsZero() {
		var err error
		sk, err = noise.GetServerKey(dctx, nc.httpClient, nc.serverURL, int(nc.capVer))
		if err != nil {
			return nil, fmt.Errorf("fetch control key from %s: %w", nc.serverURL, err)
		}
	}
	conn, err := noise.Dial(dctx, noise.DialConfig{
		URL:             nc.serverURL,
		ServerKey:       sk,
		MachineKey:      nc.machineKey,
		ProtocolVersion: uint16(nc.capVer),
		TLSConfig:       nc.tlsConfig,
		NetDial:         nc.netDial,
	})
	if err != nil {
		// The server may have a new key (e.g. it was reinstalled): fetch it
		// again next time.
		nc.mu.Lock()
		nc.serverKey = key.MachinePublic{}
		nc.mu.Unlock()
		return nil, fmt.Errorf("connect to %s: %w", nc.serverURL, err)
	}
	cc, err := (&http2.Transport{AllowHTTP: true, ReadIdleTimeout: 30 * time.Second, PingTimeout: 15 * time.Second}).NewClientConn(conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("connect to %s: http2: %w", nc.serverURL, err)
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if nc.conn != nil {
		nc.conn.Close()
	}
	nc.serverKey, nc.conn, nc.cc, nc.early = sk, conn, cc, conn.EarlyPayload()
	if len(nc.early) > 0 {
		nc.log.Debug("control sent an early payload", "bytes", len(nc.early))
	}
	return cc, nil
}

// close drops the current connection.
func (nc *noiseClient) close() {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if nc.conn != nil {
		nc.conn.Close()
	}
	nc.conn, nc.cc = nil, nil
}

// earlyPayload returns the early payload of the current connection.
func (nc *noiseClient) earlyPayload() []byte {
	nc.mu.Lock()
	defer nc.mu.Unlock()
	return nc.early
}

// post sends a JSON body to path over the Noise connection. Register and
// map requests carry no Content-Type (as upstream, control.md §2.7). The
// Ts-Lb header carries the non-zero node keys as a load-balancer hint.
func (nc *noiseClient) post(ctx context.Context, path string, body any, lbKeys ...key.NodePublic) (*http.Response, error) {
	js, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	cc, err := nc.clientConn(ctx)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(nc.serverURL)
	if err != nil {
		return nil, err
	}
	u.Scheme = "https"
	u.Path = strings.TrimRight(u.Path, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(js))
	if err != nil {
		return nil, err
	}
	for _, k := range lbKeys {
		if !k.IsZero() {
			req.Header.Add("Ts-Lb", k.String())
		}
	}
	res, err := cc.RoundTrip(req)
	if err != nil {
		if ctx.Err() == nil {
			nc.close() // a broken connection; the next request redials
		}
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	return res, nil
}

// readBody reads at most limit bytes of a response body.
func readBody(res *http.Response, limit int64) ([]byte, error) {
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	return b, nil
}

// httpError describes a non-200 answer.
type httpError struct {
	path   string
	status int
	body   string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s: http %d: %s", e.path, e.status, e.body)
}

func newHTTPError(path string, res *http.Response) error {
	b, _ := readBody(res, 4096)
	return &httpError{path: path, status: res.StatusCode, body: strings.TrimSpace(string(b))}
}
