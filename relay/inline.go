package relay

import (
	"io"
	"syscall"
	"time"
)

// Inline writes. A packet normally travels reader → destination queue →
// destination writer goroutine → socket, a goroutine hand-off per batch
// that is often a thread wake-up (futex) on each side. When the
// destination's writer is idle and the sender is not streaming faster than
// the relay reads, the sender's reader writes the batch to the destination
// socket itself with a write that never blocks; whatever the socket does
// not take is handed, with the socket, to the writer goroutine.
//
// Measured with two official tailscaled relaying one TCP stream on two
// shared cores (bench/derp relayed, 5 runs), this cut the relay's CPU per
// relayed Gbit by a fifth (1.42 to 1.12 s) and its context switches by a
// quarter. A sender whose reads fill half the read buffer is streaming
// faster than one goroutine can read and write; its batches keep going
// through the writer goroutine so that reading and writing overlap on two
// cores (bench/derp pps single flow lost half its rate when every batch
// was written inline, about a tenth with this rule).
//
// Only plain TCP destinations (not TLS, not WebSocket) are written inline,
// and only batches of packets: control frames and pongs are the writer's.
//
// The socket is a token (sendQueue.writing): whoever holds it writes,
// everyone else queues and signals, and the holder re-checks the queue
// when it lets go, so nothing queued is left unsignaled. Packet order is
// kept because every holder writes what it took, in queue order, before
// letting go, and bytes handed over are written before the next batch.

// acquireSocket takes the socket token for the writer goroutine. It
// returns the bytes an inline writer handed over with the token, or
// ok=false when an inline writer holds the token (it signals the writer
// when it lets go).
func (c *conn) acquireSocket() (pending []byte, ok bool) {
	q := &c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.writing && q.pending == nil {
		return nil, false
	}
	q.writing = true
	pending, q.pending = q.pending, nil
	return pending, true
}

// releaseSocket gives the token back and wakes the writer if something was
// queued meanwhile.
func (c *conn) releaseSocket() {
	q := &c.q
	q.mu.Lock()
	q.writing = false
	more := q.hasWorkLocked()
	q.mu.Unlock()
	if more {
		q.signal()
	}
}

// writePending writes the bytes an inline writer could not.
func (c *conn) writePending(p []byte, timeout time.Duration) error {
	if len(p) == 0 {
		return nil
	}
	if timeout > 0 {
		c.nc.SetWriteDeadline(c.s.now().Add(timeout))
	}
	_, err := c.nc.Write(p)
	return err
}

// wakeOrWrite is called by a sender's reader (c) for a destination d it
// queued packets for: it writes d's queue to d's socket if it may (see
// above), and otherwise wakes d's writer.
func (c *conn) wakeOrWrite(d *conn) {
	q := &d.q
	q.mu.Lock()
	if c.s.noInline || d.raw == nil || c.rm == nil || c.rm.big ||
		q.writing || q.closed || len(q.ctrl) > 0 || q.hasPong || q.n+q.dn == 0 {
		q.mu.Unlock()
		q.signal()
		return
	}
	q.writing = true
	q.takeLocked(&c.inl)
	q.mu.Unlock()
	c.s.m.inlineWrites.Add(1)

	tw := &c.tw
	tw.raw, tw.err = d.raw, nil
	bw := c.s.getWriter(tw)
	err := d.writeBatch(bw, &c.inl)
	if err == nil {
		err = bw.Flush()
	}
	c.s.putWriter(bw)
	tw.raw = nil
	if err != nil {
		// The destination's socket failed: end it as its own writer
		// would. Its goroutines exit on the closed context; the token
		// dies with the queue.
		c.s.release(&c.inl)
		tw.over = tw.over[:0]
		d.close()
		return
	}
	if len(tw.over) > 0 {
		c.s.m.inlineHandoffs.Add(1)
		q.mu.Lock()
		q.pending = tw.over // the writer owns these bytes, and the token, now
		q.mu.Unlock()
		tw.over = nil
		q.signal()
		return
	}
	d.releaseSocket()
}

// tryWriter writes to a socket without ever blocking: what the socket
// does not take is kept in over, and once anything is kept every later
// write is kept too, so the byte order is preserved.
type tryWriter struct {
	raw  syscall.RawConn
	over []byte
	err  error

	// The raw write's function and its arguments, kept here so that a
	// write allocates no closure.
	fn   func(fd uintptr) bool
	p    []byte
	werr error
}

func (w *tryWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	if len(w.over) == 0 {
		if w.fn == nil {
			w.fn = w.write
		}
		w.p, w.werr = p, nil
		err := w.raw.Write(w.fn)
		p, w.p = w.p, nil
		if err == nil && w.werr != nil && !wouldBlock(w.werr) {
			err = w.werr
		}
		if err != nil {
			w.err = err
			return 0, err
		}
	}
	w.over = append(w.over, p...)
	return n, nil
}

// write is the raw write: as much of w.p as the socket takes now.
func (w *tryWriter) write(fd uintptr) bool {
	for len(w.p) > 0 {
		n, err := rawWrite(fd, w.p)
		if n <= 0 || err != nil {
			w.werr = err
			break
		}
		w.p = w.p[n:]
	}
	return true // never wait for the socket
}

// readMeter sits under a connection's read buffer and notes whether the
// last read from the socket was big, a sign that the sender is streaming
// faster than the relay reads.
type readMeter struct {
	r   io.Reader
	big bool
}

func (m *readMeter) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.big = n >= readBufferSize/2
	return n, err
}
