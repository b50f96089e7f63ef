package wgengine

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"weft.dev/weft/node/netstack"
)

func (n *testNode) tailnetDialer(peers ...*testNode) netstack.DialFunc {
	return n.e.Netstack().Dialer(func(ip netip.Addr) bool {
		for _, p := range peers {
			if p.ip == ip {
				return true
			}
		}
		return false
	})
}

func listenLoopback(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func echoOnce(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
}

func TestProxiesAndInboundForward(t *testing.T) {
	l := newLab(t)
	a := l.newNode(t, "198.18.1.1", "100.64.0.1")
	b := l.newNode(t, "198.18.1.2", "100.64.0.2")
	l.connect(t, a, b)
	b.echoServer(t, 7)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	t.Run("socks5", func(t *testing.T) {
		ln := listenLoopback(t)
		go netstack.ServeSOCKS5(ctx, ln, a.tailnetDialer(b), nil)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte{5, 1, 0})
		var r [2]byte
		if _, err := io.ReadFull(c, r[:]); err != nil || r != [2]byte{5, 0} {
			t.Fatalf("greeting reply %v, %v", r, err)
		}
		req := append([]byte{5, 1, 0, 1}, b.ip.AsSlice()...)
		req = binary.BigEndian.AppendUint16(req, 7)
		c.Write(req)
		var rep [10]byte
		if _, err := io.ReadFull(c, rep[:]); err != nil || rep[1] != 0 {
			t.Fatalf("connect reply %v, %v", rep, err)
		}
		echoOnce(t, c, "hello over socks5")
	})

	t.Run("http-connect", func(t *testing.T) {
		ln := listenLoopback(t)
		go netstack.ServeHTTPProxy(ctx, ln, a.tailnetDialer(b), nil)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		target := netip.AddrPortFrom(b.ip, 7).String()
		io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\n\r\n")
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("CONNECT: %v %v", res, err)
		}
		echoOnce(t, &rwConn{Conn: c, r: br}, "hello over CONNECT")
	})

	t.Run("inbound-forward", func(t *testing.T) {
		// A service on b's host loopback is reachable at b's tunnel address.
		ln := listenLoopback(t)
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); io.Copy(c, c) }()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		defer dcancel()
		c, err := a.e.Netstack().DialContext(dctx, "tcp", netip.AddrPortFrom(b.ip, uint16(port)).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		echoOnce(t, c, "hello local service")
	})
}

type rwConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *rwConn) Read(p []byte) (int, error) { return c.r.Read(p) }
