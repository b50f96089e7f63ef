package netstack

import (
	"context"
	"io"
	"net"

	"gvisor.dev/gvisor/pkg/waiter"
)

type waiterQueue struct{ waiter.Queue }

// splice copies both ways until both directions finish or ctx ends, then
// closes both connections.
func splice(ctx context.Context, a, b net.Conn) {
	stop := context.AfterFunc(ctx, func() { a.Close(); b.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
	a.Close()
	b.Close()
}
