package noise

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// bindContext makes ctx bound the I/O on conn during a handshake: its
// deadline becomes conn's, and cancelling it forces a past deadline. The
// returned stop clears the deadline again; it returns ctx's error if ctx
// fired first, in which case conn may already be poisoned and must be closed.
func bindContext(ctx context.Context, conn net.Conn) (stop func() error) {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stopWatch := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	return func() error {
		if !stopWatch() {
			return ctx.Err()
		}
		conn.SetDeadline(time.Time{})
		return nil
	}
}

// ctxErr prefers ctx's error over the I/O timeout that cancelling it caused.
func ctxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr == nil {
		// The conn deadline equals ctx's and may fire before ctx's own timer.
		var ne net.Error
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) && errors.As(err, &ne) && ne.Timeout() {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	return err
}
