package localapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// DefaultSocket is weftd's socket path when running as root.
const DefaultSocket = "/var/run/weft/weftd.sock"

type credsKey struct{}

// Listen creates the unix socket at path. A leftover socket of a dead
// daemon is removed; a live one is an error. The socket is world-writable
// so that every local user can at least read status; permissions are
// enforced per request from the peer credentials.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another weftd is already listening on %s", path)
		}
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// Serve serves h on ln until ctx ends, attaching each connection's peer
// credentials (from creds, default PeerCreds) to its requests.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, creds PeerCredsFunc, log *slog.Logger) error {
	if creds == nil {
		creds = PeerCreds
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			cr, err := creds(c)
			if err != nil {
				log.Warn("localapi: peer credentials", "err", err)
				cr = Creds{}
			}
			return context.WithValue(ctx, credsKey{}, cr)
		},
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		srv.Close()
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// credsFrom returns the credentials attached by Serve.
func credsFrom(r *http.Request) Creds {
	c, _ := r.Context().Value(credsKey{}).(Creds)
	return c
}
