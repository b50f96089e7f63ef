package relay

import (
	"math"
	"net"

	"golang.org/x/time/rate"
)

// LimitListener wraps ln so that connections accepted faster than limit
// per second (with burst) are closed right away, as derper's
// -accept-connection-limit does. A limit of +Inf returns ln unchanged.
func LimitListener(ln net.Listener, limit float64, burst int) net.Listener {
	if math.IsInf(limit, 1) {
		return ln
	}
	return &limitListener{Listener: ln, lim: rate.NewLimiter(rate.Limit(limit), burst)}
}

type limitListener struct {
	net.Listener
	lim *rate.Limiter
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.lim.Allow() {
			return c, nil
		}
		c.Close()
	}
}
