package controlclient

import (
	"math/rand/v2"
	"time"
)

// backoff is exponential backoff with jitter: each failure doubles the
// wait from base up to max, and the actual wait is uniformly drawn from
// [d/2, d) so that many clients restarting together do not retry in step.
type backoff struct {
	base, max time.Duration
	n         int
	rand      func() float64
}

func (b *backoff) next() time.Duration {
	d := b.base << min(b.n, 20)
	if d > b.max || d <= 0 {
		d = b.max
	}
	b.n++
	r := b.rand
	if r == nil {
		r = rand.Float64
	}
	return d/2 + time.Duration(r()*float64(d/2))
}

func (b *backoff) reset() { b.n = 0 }
