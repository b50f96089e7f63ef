package nettest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// inNamespace runs fn on an OS thread that has joined namespace ns. A socket
// keeps the namespace it was created in, so fn may create sockets that the
// caller then uses from any goroutine. fn must not start goroutines that
// create sockets: they would run on other threads, in the host namespace.
//
// The thread is returned to the scheduler only after it has been moved back
// to its original namespace; if that fails, the goroutine exits still locked
// and the runtime discards the thread.
func inNamespace(ns string, fn func() error) error {
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// DialContext opens a connection from inside the node's namespace. address
// must be an IP literal with a port: no name resolution happens in the lab.
func (n *Node) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if _, err := netip.ParseAddrPort(address); err != nil {
		return nil, fmt.Errorf("dial from %s: want ip:port, got %q", n.Name, address)
	}
	var c net.Conn
	err := inNamespace(n.NS, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Listen opens a stream listener inside the node's namespace.
func (n *Node) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := inNamespace(n.NS, func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket (such as "udp4") inside the node's
// namespace.
func (n *Node) ListenPacket(network, address string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := inNamespace(n.NS, func() error {
		var err error
		pc, err = net.ListenPacket(network, address)
		return err
	})
	return pc, err
}

// HTTPClient returns a client whose connections start inside the node's
// namespace. It ignores proxy variables and times out after 10s.
func (n *Node) HTTPClient() *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       n.DialContext,
			DisableKeepAlives: true,
		},
	}
}
