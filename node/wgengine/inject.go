package wgengine

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/tun"
)

// maxInjectQueue bounds the packets waiting to be injected, so that a peer
// flooding TSMP pings cannot make the engine queue pongs without limit.
const maxInjectQueue = 128

var errInjectClosed = errors.New("wgengine: inject: tunnel device closed")

// injector lets the engine send packets into WireGuard as if the host had
// written them to the tunnel (tstun's InjectOutbound): filter.Read hands
// them to wireguard-go's TUN reader before any more of the inner device's
// packets. They skip the filter's outbound bookkeeping.
//
// The crux is waking a Read that is blocked in the inner device, without
// putting anything between wireguard-go and the device on the data path:
//
//   - A kernel TUN's file is in Go's poller, so the injector sets a read
//     deadline in the past; the blocked read returns
//     os.ErrDeadlineExceeded, Read clears the deadline and returns the
//     queued packets. Packets that are not injected cost one atomic load
//     per batch. The device's Read must pass the poller's error on (as
//     NativeTun.Read and groTUN's vnetReader do) and lose no packet to it.
//   - A device without a pollable file (the gVisor stack, test fakes) is
//     read by a pump goroutine, and Read waits for either the pump's batch
//     or an injection. That costs a hand-off and a copy per batch; the
//     gVisor stack hands every packet across goroutines already.
type injector struct {
	inner tun.Device
	// file is the inner device's pollable file (deadline wake-ups), or nil
	// (pump mode).
	file *os.File
	// ready is signalled (1-buffered) on each injection in pump mode.
	ready chan struct{}
	// done is closed by close.
	done chan struct{}
	// pending mirrors len(queue), so that Read checks it without mu.
	pending atomic.Int32

	pumpOnce sync.Once
	pump     *pump // pump mode, once the first Read started it

	mu sync.Mutex
	// guarded by mu:
	queue  [][]byte
	closed bool
}

// pump reads the inner device on its own goroutine, one batch at a time.
type pump struct {
	offset int
	bufs   [][]byte
	sizes  []int
	// n and err are the last batch's result, written by the pump before
	// it sends on full and read by Read after receiving from full.
	n   int
	err error
	// full carries a batch to Read; empty gives the buffers back.
	full, empty chan struct{}
	// stopped is closed when the pump has ended.
	stopped chan struct{}
}

// aLongTimeAgo is a read deadline that has always passed.
var aLongTimeAgo = time.Unix(1, 0)

func newInjector(inner tun.Device) *injector {
	in := &injector{inner: inner, ready: make(chan struct{}, 1), done: make(chan struct{})}
	if inner != nil {
		// SetReadDeadline fails with os.ErrNoDeadline on a file that is
		// not in the poller; such a device needs the pump.
		if f := inner.File(); f != nil && f.SetReadDeadline(time.Time{}) == nil {
			in.file = f
		}
	}
	return in
}

// mode names how a blocked Read is woken, for logs.
func (in *injector) mode() string {
	if in.file != nil {
		return "read deadline"
	}
	return "pump goroutine"
}

// inject queues pkt (which it takes ownership of) to be read by
// wireguard-go as if the host had sent it.
func (in *injector) inject(pkt []byte) error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		return errInjectClosed
	}
	if len(in.queue) >= maxInjectQueue {
		in.mu.Unlock()
		return fmt.Errorf("wgengine: inject: %d packets already queued; dropping one", maxInjectQueue)
	}
	in.queue = append(in.queue, pkt)
	in.pending.Store(int32(len(in.queue)))
	in.mu.Unlock()
	// Wake after queueing: Read clears the wake-up before it drains, so a
	// packet queued before any wake-up it sees is always drained.
	if in.file != nil {
		in.file.SetReadDeadline(aLongTimeAgo)
	} else {
		select {
		case in.ready <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return nil
}

// drain copies queued packets into bufs and returns how many.
func (in *injector) drain(bufs [][]byte, sizes []int, offset int) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for n < len(bufs) && len(in.queue) > 0 {
		pkt := in.queue[0]
		in.queue[0] = nil
		in.queue = in.queue[1:]
		if len(pkt) > len(bufs[n])-offset {
			continue // cannot happen with wireguard-go's 64 KiB buffers
		}
		sizes[n] = copy(bufs[n][offset:], pkt)
		n++
	}
	if len(in.queue) == 0 {
		in.queue = nil
	}
	in.pending.Store(int32(len(in.queue)))
	return n
}

// read is filter.Read's source of packets: injected ones first, then the
// inner device's. injected reports which it returned.
func (in *injector) read(bufs [][]byte, sizes []int, offset int) (n int, injected bool, err error) {
	if in.file == nil {
		return in.pumpRead(bufs, sizes, offset)
	}
	for {
		if in.pending.Load() > 0 {
			if n := in.drain(bufs, sizes, offset); n > 0 {
				return n, true, nil
			}
		}
		n, err := in.inner.Read(bufs, sizes, offset)
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, false, err
		}
		// Our wake-up. Clear it before draining (see inject).
		in.file.SetReadDeadline(time.Time{})
		if n > 0 {
			return n, false, nil
		}
	}
}

func (in *injector) pumpRead(bufs [][]byte, sizes []int, offset int) (int, bool, error) {
	in.pumpOnce.Do(func() { in.startPump(bufs, offset) })
	p := in.pump
	for {
		if in.pending.Load() > 0 {
			if n := in.drain(bufs, sizes, offset); n > 0 {
				return n, true, nil
			}
		}
		select {
		case <-p.full:
			n := 0
			for i := range min(p.n, len(bufs)) {
				sizes[i] = copy(bufs[i][offset:], p.bufs[i][p.offset:p.offset+p.sizes[i]])
				n++
			}
			err := p.err
			p.empty <- struct{}{}
			return n, false, err
		case <-in.ready:
		case <-p.stopped:
			return 0, false, os.ErrClosed
		case <-in.done:
			return 0, false, os.ErrClosed
		}
	}
}

// startPump starts the pump with buffers shaped like the caller's.
func (in *injector) startPump(like [][]byte, offset int) {
	p := &pump{
		offset:  offset,
		bufs:    make([][]byte, len(like)),
		sizes:   make([]int, len(like)),
		full:    make(chan struct{}),
		empty:   make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	for i := range p.bufs {
		p.bufs[i] = make([]byte, len(like[i]))
	}
	in.pump = p
	go in.runPump(p)
}

// runPump ends when the inner device fails (it is closed) or the injector
// is closed.
func (in *injector) runPump(p *pump) {
	defer close(p.stopped)
	for {
		p.n, p.err = in.inner.Read(p.bufs, p.sizes, p.offset)
		select {
		case p.full <- struct{}{}:
		case <-in.done:
			return
		}
		select {
		case <-p.empty:
		case <-in.done:
			return
		}
		if p.err != nil && !errors.Is(p.err, tun.ErrTooManySegments) {
			return // wireguard-go closes the device on this error
		}
	}
}

// close makes inject fail and a waiting pump-mode Read return; the inner
// device is closed by the caller.
func (in *injector) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return
	}
	in.closed = true
	in.queue = nil
	in.pending.Store(0)
	close(in.done)
}
