package netstack

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// DialFunc dials a proxied connection.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dialer returns a DialFunc that sends connections to addresses for which
// inTailnet is true through the stack and everything else through the
// host's network (what tailscaled's SOCKS5/HTTP proxies do). Hostnames are
// resolved by the host resolver first.
func (st *Stack) Dialer(inTailnet func(netip.Addr) bool) DialFunc {
	var host net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ip, err := netip.ParseAddr(h)
		if err != nil {
			ips, rerr := net.DefaultResolver.LookupNetIP(ctx, "ip", h)
			if rerr != nil || len(ips) == 0 {
				return nil, fmt.Errorf("resolve %s: %w", h, rerr)
			}
			ip = ips[0]
		}
		ip = ip.Unmap()
		target := net.JoinHostPort(ip.String(), p)
		if inTailnet != nil && inTailnet(ip) {
			return st.DialContext(ctx, network, target)
		}
		return host.DialContext(ctx, network, target)
	}
}

// proxyServer runs one accept loop and tracks its connections.
type proxyServer struct {
	log    *slog.Logger
	dial   DialFunc
	handle func(ctx context.Context, c net.Conn)
}

func (p *proxyServer) serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			p.handle(ctx, c)
		}()
	}
}

// ServeSOCKS5 serves a SOCKS5 proxy (no authentication, CONNECT only) on
// ln until ctx is done (--socks5-server).
func ServeSOCKS5(ctx context.Context, ln net.Listener, dial DialFunc, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &proxyServer{log: log, dial: dial}
	p.handle = p.socks5
	return p.serve(ctx, ln)
}

func (p *proxyServer) socks5(ctx context.Context, c net.Conn) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, methods); err != nil {
		return
	}
	noAuth := false
	for _, m := range methods {
		noAuth = noAuth || m == 0
	}
	if !noAuth {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, 0})
	var req [4]byte
	if _, err := io.ReadFull(br, req[:]); err != nil || req[0] != 5 {
		return
	}
	reply := func(code byte) { c.Write([]byte{5, code, 0, 1, 0, 0, 0, 0, 0, 0}) }
	var host string
	switch req[3] {
	case 1, 4:
		n := 4
		if req[3] == 4 {
			n = 16
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return
		}
		ip, _ := netip.AddrFromSlice(b)
		host = ip.String()
	case 3:
		l, err := br.ReadByte()
		if err != nil {
			return
		}
		b := make([]byte, l)
		if _, err := io.ReadFull(br, b); err != nil {
			return
		}
		host = string(b)
	default:
		reply(8) // address type not supported
		return
	}
	var pb [2]byte
	if _, err := io.ReadFull(br, pb[:]); err != nil {
		return
	}
	if req[1] != 1 {
		reply(7) // command not supported
		return
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(pb[:]))))
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	out, err := p.dial(dctx, "tcp", addr)
	cancel()
	if err != nil {
		p.log.Debug("socks5: dial failed", "addr", addr, "err", err)
		reply(5) // connection refused
		return
	}
	reply(0)
	c.SetDeadline(time.Time{})
	splice(ctx, &bufferedConn{Conn: c, r: br}, out)
}

// ServeHTTPProxy serves an HTTP proxy (CONNECT and absolute-URL requests)
// on ln until ctx is done (--outbound-http-proxy-listen).
func ServeHTTPProxy(ctx context.Context, ln net.Listener, dial DialFunc, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{DialContext: dial, ForceAttemptHTTP2: false}
	defer tr.CloseIdleConnections()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodConnect {
				connectProxy(ctx, w, r, dial, log)
				return
			}
			if r.URL.Host == "" {
				http.Error(w, "weft proxy: need an absolute URL", http.StatusBadRequest)
				return
			}
			out := r.Clone(r.Context())
			out.RequestURI = ""
			out.Header.Del("Proxy-Connection")
			res, err := tr.RoundTrip(out)
			if err != nil {
				http.Error(w, "weft proxy: "+err.Error(), http.StatusBadGateway)
				return
			}
			defer res.Body.Close()
			for k, vs := range res.Header {
				w.Header()[k] = vs
			}
			w.WriteHeader(res.StatusCode)
			io.Copy(w, res.Body)
		}),
		ReadHeaderTimeout: 30 * time.Second,
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func connectProxy(ctx context.Context, w http.ResponseWriter, r *http.Request, dial DialFunc, log *slog.Logger) {
	dctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	out, err := dial(dctx, "tcp", r.Host)
	cancel()
	if err != nil {
		log.Debug("http proxy: dial failed", "addr", r.Host, "err", err)
		http.Error(w, "weft proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		out.Close()
		http.Error(w, "weft proxy: cannot hijack", http.StatusInternalServerError)
		return
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		out.Close()
		return
	}
	brw.WriteString("HTTP/1.1 200 Connection established\r\n\r\n")
	brw.Flush()
	splice(ctx, &bufferedConn{Conn: c, r: brw.Reader}, out)
}

// bufferedConn reads through a bufio.Reader that may hold bytes already
// read from the connection.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// CloseWrite half-closes the underlying TCP connection when possible.
func (b *bufferedConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return b.Conn.Close()
}
