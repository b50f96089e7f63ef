package relay_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/relay"
	"weft.dev/weft/wire/key"
	"weft.dev/weft/wire/stun"
)

func TestSTUN(t *testing.T) {
	s, err := relay.New(relay.Options{PrivateKey: key.NewNode()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1"
			if network == "udp6" {
				host = "::1"
			}
			pc, err := net.ListenPacket(network, net.JoinHostPort(host, "0"))
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer pc.Close()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- s.ServeSTUN(ctx, pc) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("ServeSTUN: %v", err)
				}
			}()

			c, err := net.Dial(network, pc.LocalAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// Junk is ignored; a generic STUN request without SOFTWARE too.
			c.Write([]byte("hello"))
			generic := stun.AppendRequest(nil, stun.TxID{9})[:20]
			generic[3] = 0
			c.Write(generic)
			tx := stun.NewTxID()
			c.Write(stun.AppendRequest(nil, tx))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 1500)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			gotTx, addr, err := stun.ParseResponse(buf[:n])
			want := netip.MustParseAddrPort(c.LocalAddr().String())
			if err != nil || gotTx != tx || addr != want {
				t.Fatalf("response: tx %x addr %v err %v; want tx %x addr %v", gotTx, addr, err, tx, want)
			}
		})
	}
}

func TestEndpoints(t *testing.T) {
	ts := newServer(t, relay.Options{
		BootstrapDNSNames: []string{"derp.example"},
		LookupNetIP: func(ctx context.Context, network, host string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("198.18.0.10")}, nil
		},
	})
	get := func(method, path string, hdr map[string]string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.hs.URL+path, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		code         int
		wantHdr      map[string]string
		bodyHas      string
	}{
		{"GET", "/derp", nil, 426, nil, "DERP requires connection upgrade"},
		{"GET", "/derp/probe", nil, 200, map[string]string{"Access-Control-Allow-Origin": "*"}, ""},
		{"HEAD", "/derp/latency-check", nil, 200, nil, ""},
		{"POST", "/derp/probe", nil, 405, nil, "bogus probe method"},
		{"GET", "/generate_204", map[string]string{"X-Tailscale-Challenge": "ts_198.18.0.1"}, 204,
			map[string]string{"X-Tailscale-Response": "response ts_198.18.0.1"}, ""},
		{"GET", "/generate_204", map[string]string{"X-Tailscale-Challenge": "bad challenge!"}, 204,
			map[string]string{"X-Tailscale-Response": ""}, ""},
		{"GET", "/bootstrap-dns", nil, 200, map[string]string{"Content-Type": "application/json"}, `{"derp.example":["198.18.0.10"]}`},
		{"GET", "/bootstrap-dns?q=other", nil, 200, nil, `{"other":null}`},
		{"GET", "/metrics", nil, 200, nil, "derp_accepts_total"},
		{"GET", "/", nil, 200, nil, ts.PublicKey().String()},
		{"GET", "/nope", nil, 404, nil, ""},
	} {
		res, body := get(tc.method, tc.path, tc.hdr)
		if res.StatusCode != tc.code || !strings.Contains(body, tc.bodyHas) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, res.StatusCode, body, tc.code, tc.bodyHas)
		}
		for k, v := range tc.wantHdr {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s %s: header %s = %q, want %q", tc.method, tc.path, k, got, v)
			}
		}
	}
	// The 101 answer carries the Derp-* headers.
	nc, err := net.Dial("tcp", strings.TrimPrefix(ts.hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET /derp HTTP/1.1\r\nHost: x\r\nUpgrade: DERP\r\nConnection: Upgrade\r\n\r\n")
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _ := io.ReadAtLeast(nc, buf, 100)
	head, _, _ := strings.Cut(string(buf[:n]), "\r\n\r\n")
	want := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: DERP\r\nConnection: Upgrade\r\nDerp-Version: 2\r\nDerp-Public-Key: " +
		strings.TrimPrefix(ts.PublicKey().String(), "nodekey:")
	if diff := cmp.Diff(want, head); diff != "" {
		t.Errorf("101 response (-want +got):\n%s", diff)
	}
}
