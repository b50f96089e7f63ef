package noise

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/net/http2"

	"weft.dev/weft/wire/key"
)

const greeting = "hello from the server"

// newUpgradeServer serves /ts2021 with AcceptHTTP and hands each Conn to
// serve, in the handler goroutine. AcceptHTTP's results go to the channel.
func newUpgradeServer(t *testing.T, cfg ServerConfig, useTLS bool, serve func(*Conn)) (*httptest.Server, <-chan error) {
	t.Helper()
	errc := make(chan error, 16)
	mux := http.NewServeMux()
	mux.HandleFunc(Path, func(w http.ResponseWriter, r *http.Request) {
		c, err := AcceptHTTP(r.Context(), w, r, cfg)
		errc <- err
		if err != nil {
			return
		}
		defer c.Close()
		serve(c)
	})
	srv := httptest.NewUnstartedServer(mux)
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, errc
}

// greetAndEcho sends a greeting (the server speaks first, as HTTP/2 does) and echoes.
func greetAndEcho(c *Conn) {
	c.Write([]byte(greeting))
	io.Copy(c, c)
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dialConfig(srv *httptest.Server, serverKey key.MachinePrivate) DialConfig {
	cfg := DialConfig{
		URL:             srv.URL + "/ignored/prefix",
		ServerKey:       serverKey.Public(),
		MachineKey:      key.NewMachine(),
		ProtocolVersion: 142,
	}
	if srv.TLS != nil {
		cfg.TLSConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig
	}
	return cfg
}

func TestDialAcceptHTTP(t *testing.T) {
	for _, tt := range []struct{ early, tls bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("early=%v,tls=%v", tt.early, tt.tls), func(t *testing.T) {
			serverKey := key.NewMachine()
			srv, errc := newUpgradeServer(t, ServerConfig{PrivateKey: serverKey, MinVersion: 113, EarlyPayload: tt.early}, tt.tls, greetAndEcho)
			cfg := dialConfig(srv, serverKey)
			c, err := Dial(testContext(t), cfg)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			if err := <-errc; err != nil {
				t.Fatalf("AcceptHTTP: %v", err)
			}
			if got := c.EarlyPayload() != nil; got != tt.early {
				t.Errorf("EarlyPayload present = %v, want %v", got, tt.early)
			}
			if tt.early && !strings.Contains(string(c.EarlyPayload()), `{"nodeKeyChallenge":"chalpub:`) {
				t.Errorf("EarlyPayload = %s", c.EarlyPayload())
			}
			// Without an early payload the 9 peeked bytes must come back.
			got := make([]byte, len(greeting))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != greeting {
				t.Fatalf("first read %q, %v; want %q", got, err, greeting)
			}
			roundTrip(t, c, c, []int{1, 4077, 4078, 70000})
		})
	}
}

func TestHTTP2OverNoise(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprintf("early=%v", early), func(t *testing.T) {
			serverKey := key.NewMachine()
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%s %d", r.URL.Path, len(body))
			})
			var peerMu sync.Mutex
			var peers []key.MachinePublic
			srv, _ := newUpgradeServer(t, ServerConfig{PrivateKey: serverKey, EarlyPayload: early}, false, func(c *Conn) {
				peerMu.Lock()
				peers = append(peers, c.PeerMachineKey())
				peerMu.Unlock()
				new(http2.Server).ServeConn(c, &http2.ServeConnOpts{Context: context.Background(), Handler: h})
			})
			cfg := dialConfig(srv, serverKey)
			tr := &http2.Transport{
				AllowHTTP: true,
				DialTLSContext: func(ctx context.Context, _, _ string, _ *tls.Config) (net.Conn, error) {
					return Dial(ctx, cfg)
				},
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					size := 1000 + i*30000
					req, _ := http.NewRequestWithContext(testContext(t), "POST", fmt.Sprintf("http://unused/machine/%d", i), strings.NewReader(strings.Repeat("x", size)))
					resp, err := client.Do(req)
					if err != nil {
						t.Errorf("request %d: %v", i, err)
						return
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					if want := fmt.Sprintf("/machine/%d %d", i, size); string(body) != want {
						t.Errorf("request %d: got %q, want %q", i, body, want)
					}
				})
			}
			wg.Wait()
			peerMu.Lock()
			defer peerMu.Unlock()
			// All requests multiplexed over a single Noise connection.
			if len(peers) != 1 || peers[0] != cfg.MachineKey.Public() {
				t.Errorf("server saw peers %v, want one: %v", peers, cfg.MachineKey.Public())
			}
		})
	}
}

func TestDialMinVersion(t *testing.T) {
	serverKey := key.NewMachine()
	srv, errc := newUpgradeServer(t, ServerConfig{PrivateKey: serverKey, MinVersion: 113, EarlyPayload: true}, false, greetAndEcho)
	cfg := dialConfig(srv, serverKey)
	cfg.ProtocolVersion = 100
	_, err := Dial(testContext(t), cfg)
	const want = `server error: "client too old: capability version 100 < 113; upgrade Tailscale"`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Dial error = %v, want one containing %s", err, want)
	}
	if serr := <-errc; serr == nil {
		t.Error("AcceptHTTP returned no error for a rejected client")
	}
}

func TestAcceptHTTPRejects(t *testing.T) {
	serverKey := key.NewMachine()
	ci, err := StartClient(ClientConfig{MachineKey: key.NewMachine(), ServerKey: serverKey.Public(), ProtocolVersion: 142})
	if err != nil {
		t.Fatal(err)
	}
	valid := base64.StdEncoding.EncodeToString(ci.Initiation())
	badType := ci.Initiation()
	badType[2] = 9
	tests := []struct {
		name      string
		upgrade   string
		handshake string
		query     string
		wantBody  string
	}{
		{"missing upgrade", "", valid, "", "missing next protocol"},
		{"unknown upgrade", "h2c", valid, "", "unknown next protocol"},
		{"missing handshake", UpgradeProtocol, "", "", "invalid X-Tailscale-Handshake header"},
		{"bad base64", UpgradeProtocol, strings.Repeat("!", len(valid)), "", "invalid X-Tailscale-Handshake header"},
		{"short handshake", UpgradeProtocol, valid[:100], "", "invalid X-Tailscale-Handshake header"},
		{"wrong message type", UpgradeProtocol, base64.StdEncoding.EncodeToString(badType), "", "invalid X-Tailscale-Handshake header"},
		// The upgrade token is case-insensitive: this request gets as far as the hijack.
		{"not hijackable", "Tailscale-Control-Protocol", valid, "", "make request over HTTP/1"},
		{"websocket without handshake", "websocket", "", "", "invalid X-Tailscale-Handshake parameter"},
		{"websocket bad handshake", "websocket", "", "?X-Tailscale-Handshake=abc", "invalid X-Tailscale-Handshake parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", Path+tt.query, nil)
			if tt.upgrade != "" {
				r.Header.Set("Upgrade", tt.upgrade)
				r.Header.Set("Connection", "upgrade")
			}
			if tt.handshake != "" {
				r.Header.Set(HandshakeHeader, tt.handshake)
			}
			w := httptest.NewRecorder() // not an http.Hijacker
			c, err := AcceptHTTP(context.Background(), w, r, ServerConfig{PrivateKey: serverKey})
			if c != nil || err == nil {
				t.Fatalf("AcceptHTTP = %v, %v; want an error", c, err)
			}
			if w.Code != http.StatusBadRequest || strings.TrimSpace(w.Body.String()) != tt.wantBody {
				t.Errorf("response %d %q, want 400 %q", w.Code, w.Body.String(), tt.wantBody)
			}
		})
	}
}

func TestDialRejectsBadUpgradeResponse(t *testing.T) {
	raw := func(resp string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			conn.Write([]byte(resp))
		}
	}
	const ok101 = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n\r\n"
	tests := []struct {
		name string
		h    http.HandlerFunc
		want string
	}{
		{"plain 200", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "not here") }, `upgrade refused: 200 OK: "not here"`},
		{"upgrade wrong case", raw(strings.Replace(ok101, "tailscale-control", "Tailscale-Control", 1)), `Upgrade "Tailscale-Control-protocol"`},
		{"not a response", raw(ok101 + "\x09\x00\x30"), "message type 0x09"},
		{"truncated response", raw(ok101 + "\x02\x00\x30abc"), "read handshake response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.h)
			defer srv.Close()
			_, err := Dial(testContext(t), dialConfig(srv, key.NewMachine()))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Dial error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDialHonoursContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = Dial(ctx, DialConfig{URL: "http://" + ln.Addr().String(), ServerKey: key.NewMachine().Public(), MachineKey: key.NewMachine(), ProtocolVersion: 142})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial error = %v, want context.DeadlineExceeded", err)
	}
}

func TestAcceptHTTPBufferedBytes(t *testing.T) {
	// Bytes that arrive with the request headers belong to the Noise stream.
	serverKey := key.NewMachine()
	readErr := make(chan error, 1)
	srv, errc := newUpgradeServer(t, ServerConfig{PrivateKey: serverKey}, false, func(c *Conn) {
		_, err := c.Read(make([]byte, 10))
		readErr <- err
	})
	ci, err := StartClient(ClientConfig{MachineKey: key.NewMachine(), ServerKey: serverKey.Public(), ProtocolVersion: 142})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "POST /ts2021 HTTP/1.1\r\nHost: x\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\n" +
		HandshakeHeader + ": " + base64.StdEncoding.EncodeToString(ci.Initiation()) + "\r\nContent-Length: 0\r\n\r\n" +
		"\x07\x00\x01" // not a record
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("response %v, %v", resp, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; err == nil || !strings.Contains(err.Error(), "unexpected message type 0x07") {
		t.Fatalf("server Read error = %v, want the pipelined bytes to be seen", err)
	}
}

func TestWebSocket(t *testing.T) {
	for _, offer := range []bool{true, false} {
		t.Run(fmt.Sprintf("subprotocol=%v", offer), func(t *testing.T) {
			serverKey := key.NewMachine()
			// EarlyPayload is set but must not be sent on this path.
			srv, errc := newUpgradeServer(t, ServerConfig{PrivateKey: serverKey, EarlyPayload: true}, false, greetAndEcho)
			machineKey := key.NewMachine()
			ci, err := StartClient(ClientConfig{MachineKey: machineKey, ServerKey: serverKey.Public(), ProtocolVersion: 142})
			if err != nil {
				t.Fatal(err)
			}
			ctx := testContext(t)
			u := "ws" + strings.TrimPrefix(srv.URL, "http") + Path + "?" + HandshakeHeader + "=" +
				url.QueryEscape(base64.StdEncoding.EncodeToString(ci.Initiation()))
			opts := &websocket.DialOptions{}
			if offer {
				opts.Subprotocols = []string{UpgradeProtocol}
			}
			ws, _, err := websocket.Dial(ctx, u, opts)
			if err != nil {
				t.Fatalf("websocket dial: %v", err)
			}
			nc := websocket.NetConn(context.Background(), ws, websocket.MessageBinary)
			defer nc.Close()
			c, err := ci.Finish(nc)
			serr := <-errc
			if !offer {
				if err == nil || serr == nil {
					t.Fatalf("without the subprotocol: client %v, server %v; want errors", err, serr)
				}
				return
			}
			if err != nil || serr != nil {
				t.Fatalf("client %v, server %v", err, serr)
			}
			got := make([]byte, len(greeting))
			if _, err := io.ReadFull(c, got); err != nil || string(got) != greeting {
				t.Fatalf("first read %q, %v; want %q (no early payload)", got, err, greeting)
			}
			roundTrip(t, c, c, []int{1, 4078, 30000})
		})
	}
}

func TestGetServerKey(t *testing.T) {
	noiseKey := key.NewMachine().Public()
	zeros := strings.Repeat("0", 64)
	tests := []struct {
		name   string
		status int
		body   string
		want   string // error substring; "" means success
	}{
		{"ok", 200, `{"legacyPublicKey":"mkey:` + zeros + `","publicKey":"` + noiseKey.String() + `"}`, ""},
		{"no noise key", 200, `{"legacyPublicKey":"mkey:` + zeros + `","publicKey":"mkey:` + zeros + `"}`, "control server is too old; no noise key"},
		{"empty object", 200, `{}`, "control server is too old; no noise key"},
		{"bare legacy hex", 200, strings.Repeat("ab", 32), "control server is too old; no noise key"},
		{"garbage", 200, `<html>`, "invalid character"},
		{"status", 404, "nope", `404 Not Found: "nope"`},
		{"too large", 200, `{"publicKey":"` + noiseKey.String() + `","pad":"` + strings.Repeat("x", 64<<10) + `"}`, "exceeds 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/base/key" || r.URL.RawQuery != "v=142" {
					t.Errorf("request %s, want /base/key?v=142", r.URL)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			got, err := GetServerKey(testContext(t), srv.Client(), srv.URL+"/base/", 142)
			checkErr(t, "GetServerKey", err, tt.want)
			if tt.want == "" && got != noiseKey {
				t.Errorf("key = %v, want %v", got, noiseKey)
			}
		})
	}
}
