package relay

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"weft.dev/weft/wire/derp"
)

// ServeHTTP serves the DERP endpoint (mount it at /derp): the HTTP upgrade
// with "Upgrade: DERP" (optionally fast start) and the WebSocket variant
// with subprotocol "derp". /derp/probe and /derp/latency-check are answered
// here too, as upstream's handler does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/derp/probe", "/derp/latency-check":
		ServeProbe(w, r)
		return
	}
	up := strings.ToLower(r.Header.Get("Upgrade"))
	if up != "derp" && up != "websocket" {
		http.Error(w, "DERP requires connection upgrade", http.StatusUpgradeRequired)
		return
	}
	if !s.startConn() {
		http.Error(w, "DERP server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.conns.Done()
	remote, _ := netip.ParseAddrPort(r.RemoteAddr)
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	notIdeal := r.Header.Get(derp.IdealNodeHeader) != ""

	if up == "websocket" && strings.Contains(r.Header.Get("Sec-Websocket-Protocol"), derp.WebSocketSubprot) {
		s.serveWebSocket(w, r, remote, notIdeal)
		return
	}
	// "Upgrade: websocket" without the derp subprotocol is legacy raw DERP.
	h, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "HTTP does not support general TCP support", http.StatusInternalServerError)
		return
	}
	nc, brw, err := h.Hijack()
	if err != nil {
		s.log.Warn("derp: hijack failed", "err", err)
		return
	}
	if r.Header.Get(derp.FastStartHeader) != "1" {
		fmt.Fprintf(brw.Writer, "HTTP/1.1 101 Switching Protocols\r\n"+
			"Upgrade: DERP\r\nConnection: Upgrade\r\n%s: %d\r\n%s: %x\r\n\r\n",
			derp.VersionHeader, derp.ProtocolVersion, derp.PublicKeyHeader, s.pub.Raw32())
		if err := brw.Writer.Flush(); err != nil {
			nc.Close()
			return
		}
	}
	// A large reader in front of http's 4 KiB one: reads of a whole packet
	// bypass both buffers, small frames are batched.
	rm := &readMeter{r: brw.Reader}
	br := bufio.NewReaderSize(rm, readBufferSize)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	if err := s.accept(ctx, nc, br, rm, remote, notIdeal); err != nil {
		s.log.Info("derp: connection ended", "remote", r.RemoteAddr, "err", err)
	}
}

// startConn registers a connection handler unless the server is closed.
func (s *Server) startConn() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns.Add(1)
	return true
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, remote netip.AddrPort, notIdeal bool) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:       []string{derp.WebSocketSubprot},
		InsecureSkipVerify: true, // any origin, as upstream
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		s.log.Info("derp: websocket accept", "err", err)
		return
	}
	if c.Subprotocol() != derp.WebSocketSubprot {
		c.Close(websocket.StatusPolicyViolation, "client must speak the derp subprotocol")
		return
	}
	c.SetReadLimit(derp.MaxFrameLen + derp.FrameHeaderLen)
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	nc := websocket.NetConn(ctx, c, websocket.MessageBinary)
	if err := s.accept(ctx, nc, bufio.NewReaderSize(nc, readBufferSize), nil, remote, notIdeal); err != nil {
		s.log.Info("derp: websocket connection ended", "remote", r.RemoteAddr, "err", err)
	}
}

// ServeProbe answers /derp/probe and /derp/latency-check.
func ServeProbe(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		w.Header().Set("Access-Control-Allow-Origin", "*")
	default:
		http.Error(w, "bogus probe method", http.StatusMethodNotAllowed)
	}
}

// ServeNoContent answers /generate_204, echoing a well-formed
// X-Tailscale-Challenge as "X-Tailscale-Response: response <challenge>";
// clients call anything else a captive portal.
func ServeNoContent(w http.ResponseWriter, r *http.Request) {
	if ch := r.Header.Get(derp.ChallengeHeader); ch != "" && len(ch) <= 64 && validChallenge(ch) {
		w.Header().Set(derp.ResponseHeader, "response "+ch)
	}
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate, no-transform, max-age=0")
	w.WriteHeader(http.StatusNoContent)
}

func validChallenge(s string) bool {
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == '_' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// Handler returns the whole derper-style mux: /derp, /derp/probe,
// /derp/latency-check, /generate_204, /bootstrap-dns, /metrics,
// /robots.txt and a small home page at /.
func (s *Server) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s})
	mux := http.NewServeMux()
	mux.Handle("/derp", s)
	mux.HandleFunc("/derp/probe", ServeProbe)
	mux.HandleFunc("/derp/latency-check", ServeProbe)
	mux.HandleFunc("/generate_204", ServeNoContent)
	mux.HandleFunc("/bootstrap-dns", s.serveBootstrapDNS)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/robots.txt", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "User-agent: *\nDisallow: /\n")
	})
	mux.HandleFunc("/", s.serveHome)
	return mux
}

func (s *Server) serveHome(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><html><head><title>weft DERP relay</title></head><body>
<h1>weft DERP relay</h1>
<p>This is a DERP relay server for a weft (Tailscale-compatible) network.
Server key: <code>%s</code></p>
<p>Endpoints: <a href="/derp/probe">/derp/probe</a>, <a href="/generate_204">/generate_204</a>,
<a href="/metrics">/metrics</a>.</p>
</body></html>
`, html.EscapeString(s.pub.String()))
}

// bootstrapDNS caches the answers published at /bootstrap-dns for ten
// minutes; lookups happen on request, so no background goroutine is needed.
type bootstrapDNS struct {
	names  []string
	lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)

	mu sync.Mutex
	// Guarded by mu:
	body    []byte
	fetched time.Time
}

func (b *bootstrapDNS) init(o Options) {
	b.names = o.BootstrapDNSNames
	b.lookup = o.LookupNetIP
	if b.lookup == nil {
		b.lookup = net.DefaultResolver.LookupNetIP
	}
}

func (s *Server) serveBootstrapDNS(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	b := &s.bdns
	b.mu.Lock()
	if b.body == nil || s.now().Sub(b.fetched) > 10*time.Minute {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		m := map[string][]string{}
		for _, n := range b.names {
			addrs, err := b.lookup(ctx, "ip", n)
			if err != nil {
				s.log.Info("bootstrap-dns lookup", "name", n, "err", err)
				continue
			}
			for _, a := range addrs {
				m[n] = append(m[n], a.Unmap().String())
			}
		}
		cancel()
		b.body, _ = json.Marshal(m)
		b.fetched = s.now()
	}
	body := b.body
	b.mu.Unlock()
	if q := r.URL.Query().Get("q"); q != "" {
		var m map[string][]string
		json.Unmarshal(body, &m)
		body, _ = json.Marshal(map[string][]string{q: m[q]})
	}
	w.Write(body)
}
