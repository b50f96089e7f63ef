package mapper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"weft.dev/weft/control/state"
)

// Reasons a session ends on the server's initiative.
var (
	ErrSuperseded = errors.New("map session superseded by a newer one")
	ErrSlow       = errors.New("map session fell too far behind")
	ErrDeleted    = errors.New("node deleted")
)

// session is one long poll of one node.
type session struct {
	nodeID   int64
	compress bool
	q        chan *frame

	endOnce sync.Once
	done    chan struct{}
	err     error // set before done is closed

	// Guarded by Batcher.flushMu. While a policy is active the session is
	// tracked: sent holds the peers its client has and filterSum a hash
	// of the packet filter it was last sent, so deltas add and remove
	// exactly what changed for it. Untracked, it has every node and the
	// allow-all filter.
	tracked   bool
	sent      idSet
	filterSum uint64
}

func (s *session) end(err error) {
	s.endOnce.Do(func() {
		s.err = err
		close(s.done)
	})
}

// enqueue never blocks: a session too slow to keep up is ended and its
// client reconnects to a fresh full map.
func (s *session) enqueue(f *frame) {
	select {
	case s.q <- f:
	default:
		s.end(ErrSlow)
	}
}

// register makes sess the node's current session, once the latest flushed
// snapshot contains the node, and returns that snapshot with what the
// node's first map holds. It runs under flushMu, so the session's view is
// fixed before the next flush computes deltas against it.
func (b *Batcher) register(ctx context.Context, sess *session) (*state.Snapshot, mapView, error) {
	for {
		b.flushMu.Lock()
		b.mu.Lock()
		if b.snap != nil && b.snap.Lookup(sess.nodeID) != nil {
			if old := b.sessions[sess.nodeID]; old != nil {
				old.end(ErrSuperseded)
			}
			b.sessions[sess.nodeID] = sess
			if t := b.offline[sess.nodeID]; t != nil {
				t.Stop()
				delete(b.offline, sess.nodeID)
			}
			snap := b.snap
			b.mu.Unlock()
			v := b.trackLocked(sess, snap)
			b.flushMu.Unlock()
			return snap, v, nil
		}
		// The node's registration is not flushed yet: flush now.
		ch := b.genCh
		b.armLocked(0)
		b.mu.Unlock()
		b.flushMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, mapView{}, ctx.Err()
		}
		if _, ok := b.st.Node(sess.nodeID); !ok {
			return nil, mapView{}, fmt.Errorf("node %d: %w", sess.nodeID, state.ErrNotFound)
		}
	}
}

// unregister removes sess; if it was the node's current session the node
// goes offline after the grace period unless a new session appears.
func (b *Batcher) unregister(sess *session) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sessions[sess.nodeID] != sess {
		return
	}
	delete(b.sessions, sess.nodeID)
	id := sess.nodeID
	b.offline[id] = b.cfg.Clock.AfterFunc(b.cfg.OfflineGrace, func() {
		b.mu.Lock()
		_, back := b.sessions[id]
		delete(b.offline, id)
		b.mu.Unlock()
		if !back {
			b.st.SetOnline(context.Background(), id, false)
		}
	})
}

// Serve runs a long poll for node nodeID: the full map first, then deltas
// and keep-alives, until ctx ends, the session is superseded, or a write
// fails. flush pushes written bytes to the client (HTTP/2 DATA frames).
func (b *Batcher) Serve(ctx context.Context, nodeID int64, compress bool, capVer int, w io.Writer, flush func()) error {
	sess := &session{nodeID: nodeID, compress: compress, q: make(chan *frame, b.cfg.QueueLen), done: make(chan struct{})}
	snap, view, err := b.register(ctx, sess)
	if err != nil {
		return err
	}
	defer b.unregister(sess)
	b.metrics.sessions.Inc()
	defer b.metrics.sessions.Dec()
	if _, err := b.st.SetOnline(ctx, nodeID, true); err != nil {
		return err
	}

	first, err := b.firstFrame(nodeID, snap, view, compress)
	if err != nil {
		return err
	}
	err = b.write(w, first, compress)
	first.release()
	if err != nil {
		return err
	}
	flush()

	// The keep-alive timer is armed once per KeepAlive period and checks
	// when the stream last carried data, rather than being reset on every
	// frame (a timer operation per frame per session adds up at scale).
	kick := make(chan struct{}, 1)
	var lastWrite time.Time
	var timer interface{ Stop() bool }
	arm := func(d time.Duration) {
		timer = b.cfg.Clock.AfterFunc(d, func() {
			select {
			case kick <- struct{}{}:
			default:
			}
		})
	}
	period := func() time.Duration {
		return b.cfg.KeepAlive + time.Duration(rand.Int64N(int64(8*time.Second)))
	}
	lastWrite = b.cfg.Clock.Now()
	arm(period())
	defer func() { timer.Stop() }()

	for {
		select {
		case f := <-sess.q:
			closeAfter := f.closeAfter
			if err := b.write(w, f, compress); err != nil {
				return err
			}
			// Coalesce whatever else is queued into one flush.
		drain:
			for !closeAfter {
				select {
				case f := <-sess.q:
					closeAfter = f.closeAfter
					if err := b.write(w, f, compress); err != nil {
						return err
					}
				default:
					break drain
				}
			}
			flush()
			if closeAfter {
				return ErrDeleted
			}
			lastWrite = b.cfg.Clock.Now()
		case <-kick:
			if idle := b.cfg.Clock.Now().Sub(lastWrite); idle < b.cfg.KeepAlive {
				arm(b.cfg.KeepAlive - idle)
				continue
			}
			if err := b.write(w, b.keep, compress); err != nil {
				return err
			}
			flush()
			lastWrite = b.cfg.Clock.Now()
			arm(period())
		case <-sess.done:
			return sess.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeChunk bounds each write to the response. HTTP/2 turns one large
// write into maximal DATA frames, and the server's framer then keeps a
// buffer of that size for the connection's lifetime (16 KiB × every node);
// 4 KiB writes make 4 KiB frames, which the Noise layer would split into
// 4 KiB records anyway.
//
// 4087 rather than 4096: with its 9-byte header the DATA frame then fits
// the HTTP/2 server's empty 4 KiB write buffer, which x/net writes inline
// instead of starting a goroutine for the frame.
const writeChunk = 4<<10 - 9

func (b *Batcher) write(w io.Writer, f *frame, compress bool) error {
	p := f.wire(compress)
	b.metrics.bytesOut.Add(float64(len(p)))
	for len(p) > 0 {
		n := min(len(p), writeChunk)
		if _, err := w.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// WriteFullMap writes one full map frame for nodeID (the one-shot
// Stream=false, OmitPeers=false request).
func (b *Batcher) WriteFullMap(ctx context.Context, nodeID int64, compress bool, w io.Writer) error {
	b.mu.Lock()
	snap := b.snap
	b.mu.Unlock()
	if snap == nil || snap.Lookup(nodeID) == nil {
		b.flush()
		b.mu.Lock()
		snap = b.snap
		b.mu.Unlock()
	}
	var view mapView
	if snap != nil && snap.Policy != nil {
		view, _ = b.viewOf(nodeID, snap, snap.Policy)
	}
	f, err := b.firstFrame(nodeID, snap, view, compress)
	if err != nil {
		return err
	}
	defer f.release()
	return b.write(w, f, compress)
}

// firstFrame builds a session's full map: from cached compressed peer
// blocks when the session takes zstd and sees every node, else by encoding
// it whole.
func (b *Batcher) firstFrame(nodeID int64, snap *state.Snapshot, view mapView, compress bool) (*frame, error) {
	now := b.cfg.Clock.Now()
	if compress && view.peers == nil && view.filterJS == nil {
		z, err := b.fullMapWire(nodeID, snap, now)
		if err != nil {
			return nil, err
		}
		f := newPrivateFrame(b.enc, nil, &b.bufs)
		f.zOnce.Do(func() { f.z = z })
		return f, nil
	}
	js, err := b.fullMap(nodeID, snap, view, now)
	if err != nil {
		return nil, err
	}
	return newPrivateFrame(b.enc, js, &b.bufs), nil
}

// Sessions returns the number of live map sessions.
func (b *Batcher) Sessions() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sessions)
}

// Close ends every session (server shutdown).
func (b *Batcher) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.sessions {
		s.end(errors.New("server shutting down"))
	}
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
}
