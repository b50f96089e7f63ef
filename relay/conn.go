package relay

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

const (
	handshakeTimeout  = 10 * time.Second
	meshWriteTimeout  = 30 * time.Second
	readBufferSize    = 32 << 10
	writeBufferSize   = 64 << 10
	maxRouteCacheSize = 4096
)

// conn is one client connection. The reader goroutine (readLoop) owns the
// fields marked "reader"; whoever holds the socket token (q.writing: the
// writer goroutine or a sender's reader writing inline) owns the fields
// marked "writer" and writes to nc.
type conn struct {
	s        *Server
	nc       net.Conn
	br       *bufio.Reader
	rm       *readMeter // under br; nil for WebSocket
	key      key.NodePublic
	info     derp.ClientInfo
	remote   netip.AddrPort
	canMesh  bool
	notIdeal bool
	num      uint64
	log      *slog.Logger

	ctx       context.Context // canceled when the connection ends
	cancel    context.CancelFunc
	done      chan struct{} // closed when the handler returns
	closeOnce sync.Once

	isDup     atomic.Bool // key has several connections
	preferred atomic.Bool // client sent NotePreferred(1)

	q   sendQueue
	raw syscall.RawConn // nc's socket for inline writes; nil unless plain TCP

	// Reader-owned:
	routes      map[key.NodePublic]route
	fwdRoutes   map[[2]key.NodePublic]route // ForwardPacket routes by (src, dst)
	waitTimer   *time.Timer
	peerGoneLim *rate.Limiter
	recvLim     *rate.Limiter // nil when not rate limited
	// wakes are destinations given packets whose writers have not been
	// woken yet: while more whole frames sit in the read buffer the
	// reader keeps going and wakes each writer once for the lot, instead
	// of a goroutine wake-up (often a thread wake-up) per packet; or
	// writes the lot itself (wakeOrWrite).
	wakes []*conn
	inl   batch     // wakeOrWrite's batch
	tw    tryWriter // wakeOrWrite's socket writer

	// Writer-owned:
	wroteRestart, restartSignaled bool
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

func (c *conn) presentFlags() derp.PeerPresentFlags {
	var f derp.PeerPresentFlags
	if c.canMesh {
		f |= derp.PeerPresentIsMeshPeer
	}
	if c.info.IsProber {
		f |= derp.PeerPresentIsProber
	}
	if c.notIdeal {
		f |= derp.PeerPresentNotIdeal
	}
	if f == 0 {
		f = derp.PeerPresentIsRegular
	}
	return f
}

// accept runs the DERP session on an upgraded connection until it ends.
// br holds any bytes the client sent after its HTTP request (fast start).
func (s *Server) accept(ctx context.Context, nc net.Conn, br *bufio.Reader, rm *readMeter, remote netip.AddrPort, notIdeal bool) error {
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() }) // Close must not wait out a slow handshake
	defer stop()
	nc.SetDeadline(s.now().Add(handshakeTimeout))
	hello := derp.AppendServerKey(derp.AppendHeader(nil, derp.FrameServerKey, uint32(len(derp.Magic)+derp.KeyLen)), s.pub)
	if _, err := nc.Write(hello); err != nil {
		return fmt.Errorf("send server key: %w", err)
	}
	ft, p, err := derp.ReadFrame(br, derp.MaxClientInfoLen, nil)
	if err != nil {
		return fmt.Errorf("read client info: %w", err)
	}
	if ft != derp.FrameClientInfo {
		return fmt.Errorf("first frame is %v, want ClientInfo", ft)
	}
	ck, info, err := derp.OpenClientInfo(s.priv, p)
	if err != nil {
		return err
	}
	canMesh := !s.meshKey.IsZero() && info.MeshKey.Equal(s.meshKey)
	if !canMesh && s.opts.Verify != nil {
		vctx, cancel := context.WithTimeout(ctx, s.opts.VerifyTimeout)
		err := s.opts.Verify(vctx, ck, info, remote)
		cancel()
		if err != nil {
			s.m.rejected.Add(1)
			return fmt.Errorf("client %s rejected: %w", ck.ShortString(), err)
		}
	}
	nc.SetDeadline(time.Time{})

	cctx, cancel := context.WithCancel(ctx)
	c := &conn{
		s: s, nc: nc, br: br, rm: rm, key: ck, info: info, remote: remote,
		canMesh: canMesh, notIdeal: notIdeal, num: s.connNum.Add(1),
		ctx: cctx, cancel: cancel, done: make(chan struct{}),
		q:           newSendQueue(s.opts.QueueDepth, s.opts.DiscoQueueDepth, s.opts.QueueBytes),
		routes:      map[key.NodePublic]route{},
		peerGoneLim: rate.NewLimiter(rate.Every(time.Second), 3),
		waitTimer:   time.NewTimer(time.Hour),
	}
	c.waitTimer.Stop()
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn()
	}
	c.log = s.log.With("client", ck.ShortString(), "remote", remote.String())
	if s.opts.RateLimitBytesPerSec > 0 && !canMesh {
		c.recvLim = rate.NewLimiter(rate.Limit(s.opts.RateLimitBytesPerSec), s.opts.RateLimitBurst)
	}
	defer close(c.done)
	defer c.close()

	if err := s.registerClient(c); err != nil {
		return err
	}
	defer s.unregisterClient(c)

	sp, err := derp.SealServerInfo(nil, s.priv, ck, derp.ServerInfo{Version: derp.ProtocolVersion})
	if err != nil {
		return err
	}
	nc.SetWriteDeadline(s.now().Add(handshakeTimeout))
	if _, err := nc.Write(append(derp.AppendHeader(nil, derp.FrameServerInfo, uint32(len(sp))), sp...)); err != nil {
		return fmt.Errorf("send server info: %w", err)
	}
	nc.SetWriteDeadline(time.Time{})
	c.log.Debug("derp client connected", "mesh", canMesh)

	werr := make(chan error, 1)
	go func() { werr <- c.writeLoop() }()
	rerr := c.readLoop()
	c.close()
	err = <-werr
	var b batch
	c.q.shutdown(&b)
	s.release(&b)
	if rerr != nil && !errors.Is(rerr, net.ErrClosed) && !errors.Is(rerr, io.EOF) && ctx.Err() == nil {
		return rerr
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("writer: %w", err)
	}
	return nil
}

// readLoop reads and handles frames until the connection fails.
func (c *conn) readLoop() error {
	defer c.flushWakes()
	for {
		if len(c.wakes) > 0 && (c.recvLim != nil || len(c.wakes) >= maxDeferredWakes || !c.frameBuffered()) {
			c.flushWakes()
		}
		ft, fl, err := derp.ReadHeader(c.br)
		if err != nil {
			if errors.Is(err, io.EOF) || c.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read frame header: %w", err)
		}
		if c.recvLim != nil {
			if err := c.recvLim.WaitN(c.ctx, min(int(fl), c.recvLim.Burst())); err != nil {
				return nil
			}
		}
		switch ft {
		case derp.FrameSendPacket:
			err = c.handleSendPacket(fl)
		case derp.FrameForwardPacket:
			err = c.handleForwardPacket(fl)
		case derp.FrameNotePreferred:
			err = c.handleNotePreferred(fl)
		case derp.FramePing:
			err = c.handlePing(fl)
		case derp.FrameWatchConns:
			if fl != 0 || !c.canMesh {
				return fmt.Errorf("WatchConns (len %d) from non-mesh or malformed client", fl)
			}
			c.s.addWatcher(c)
		case derp.FrameClosePeer:
			err = c.handleClosePeer(fl)
		default:
			// Unknown frames are skipped for forward compatibility, but
			// only up to the size any real frame has.
			if fl > derp.MaxFrameLen {
				return fmt.Errorf("%v frame of %d bytes exceeds limit", ft, fl)
			}
			_, err = c.br.Discard(int(fl))
		}
		if err != nil {
			return err
		}
	}
}

// maxDeferredWakes bounds the destinations a reader collects before it
// wakes their writers.
const maxDeferredWakes = 32

// frameBuffered reports whether a whole frame is already in the read
// buffer, so that handling it needs no read from the socket.
func (c *conn) frameBuffered() bool {
	n := c.br.Buffered()
	if n < derp.FrameHeaderLen {
		return false
	}
	h, err := c.br.Peek(derp.FrameHeaderLen)
	if err != nil {
		return false
	}
	return n-derp.FrameHeaderLen >= int(binary.BigEndian.Uint32(h[1:]))
}

// deferWake notes that d's queue got a packet; its writer is woken (or
// the packets written inline) by flushWakes.
func (c *conn) deferWake(d *conn) {
	if n := len(c.wakes); n > 0 && c.wakes[n-1] == d {
		return
	}
	c.wakes = append(c.wakes, d)
}

// flushWakes writes out or wakes the writers of every destination noted
// by deferWake.
func (c *conn) flushWakes() {
	for i, d := range c.wakes {
		c.wakeOrWrite(d)
		c.wakes[i] = nil
	}
	c.wakes = c.wakes[:0]
}

// readKey reads a raw key without allocating.
func (c *conn) readKey() (key.NodePublic, error) {
	b, err := c.br.Peek(derp.KeyLen)
	if err != nil {
		return key.NodePublic{}, err
	}
	k := key.NodePublicFromRaw32([32]byte(b))
	c.br.Discard(derp.KeyLen)
	return k, nil
}

func (c *conn) handleSendPacket(fl uint32) error {
	if fl < derp.KeyLen || fl-derp.KeyLen > derp.MaxPacketSize {
		return fmt.Errorf("SendPacket of %d bytes", fl)
	}
	dst, err := c.readKey()
	if err != nil {
		return err
	}
	pk := c.s.pool.get(int(fl - derp.KeyLen))
	if _, err := io.ReadFull(c.br, pk.data); err != nil {
		c.s.pool.put(pk)
		return err
	}
	pk.src = c.key.Raw32()
	c.s.m.packetsRecv.Add(1)
	c.s.m.bytesRecv.Add(uint64(len(pk.data)))
	c.s.noteActivity(c)

	r, ok := c.routes[dst]
	if !ok || r.gen != c.s.gen.Load() {
		if len(c.routes) >= maxRouteCacheSize {
			clear(c.routes)
		}
		r = c.s.lookupRoute(c.key, dst)
		c.routes[dst] = r
	}
	switch {
	case r.dst != nil:
		c.deliver(r.dst, pk)
	case r.fwd != nil:
		c.flushWakes() // the mesh write below may block
		err := r.fwd.forward(c.key, dst, pk.data)
		if err != nil {
			c.s.m.drop(dropFwdError)
		} else {
			c.s.m.forwardedOut.Add(1)
		}
		c.s.pool.put(pk)
	default:
		reason := dropUnknownDest
		if r.dup {
			reason = dropDupClient
		}
		c.dropUnroutable(dst, pk, reason)
	}
	return nil
}

func (c *conn) handleForwardPacket(fl uint32) error {
	if !c.canMesh {
		return errors.New("ForwardPacket from non-mesh client")
	}
	if fl < 2*derp.KeyLen || fl-2*derp.KeyLen > derp.MaxPacketSize {
		return fmt.Errorf("ForwardPacket of %d bytes", fl)
	}
	src, err := c.readKey()
	if err != nil {
		return err
	}
	dst, err := c.readKey()
	if err != nil {
		return err
	}
	pk := c.s.pool.get(int(fl - 2*derp.KeyLen))
	if _, err := io.ReadFull(c.br, pk.data); err != nil {
		c.s.pool.put(pk)
		return err
	}
	pk.src = src.Raw32()
	c.s.m.forwardedIn.Add(1)
	c.s.m.bytesRecv.Add(uint64(len(pk.data)))

	if c.fwdRoutes == nil {
		c.fwdRoutes = map[[2]key.NodePublic]route{}
	}
	pair := [2]key.NodePublic{src, dst}
	r, ok := c.fwdRoutes[pair]
	if !ok || r.gen != c.s.gen.Load() {
		if len(c.fwdRoutes) >= maxRouteCacheSize {
			clear(c.fwdRoutes)
		}
		r = c.s.lookupRoute(src, dst)
		c.fwdRoutes[pair] = r
	}
	// Forwarding is one hop: never re-forward to another mesh peer.
	if r.dst == nil {
		c.dropUnroutable(dst, pk, dropUnknownDestOnFwd)
		return nil
	}
	c.deliver(r.dst, pk)
	return nil
}

// dropUnroutable drops pk and, for disco packets, tells the sender (rate
// limited) that dst is not here.
func (c *conn) dropUnroutable(dst key.NodePublic, pk *packet, reason dropReason) {
	c.s.m.drop(reason)
	if derp.LooksLikeDisco(pk.data) && reason != dropDupClient && c.peerGoneLim.Allow() {
		c.q.pushCtrl(ctrlMsg{kind: ctrlPeerGone, peer: dst, reason: derp.PeerGoneNotHere})
	}
	c.s.pool.put(pk)
}

// deliver queues pk on dst. Regular packets get bounded back-pressure: the
// reader waits (up to BackpressureWait) for room instead of dropping, which
// slows the sending TCP flow to the receiver's pace. Disco packets never
// wait.
func (c *conn) deliver(dst *conn, pk *packet) {
	if derp.LooksLikeDisco(pk.data) {
		drop, ok := dst.q.pushDisco(pk)
		if !ok {
			c.s.m.drop(dropGone)
		} else if drop != nil {
			c.s.m.drop(dropQueueHead)
		}
		if drop != nil {
			c.s.pool.put(drop)
		}
		return
	}
	q := &dst.q
	wait := c.s.opts.BackpressureWait
	for {
		q.mu.Lock()
		switch q.tryPushLocked(pk) {
		case pushed:
			q.mu.Unlock()
			c.deferWake(dst)
			return
		case pushClosed:
			q.mu.Unlock()
			c.s.m.drop(dropGone)
			c.s.pool.put(pk)
			return
		}
		if wait < 0 || q.stalled {
			old := q.popOldestLocked()
			q.tryPushLocked(pk)
			q.mu.Unlock()
			q.signal()
			c.s.m.drop(dropQueueHead)
			c.s.pool.put(old)
			return
		}
		ch := q.space
		if ch == nil {
			ch = make(chan struct{})
			q.space = ch
		}
		q.mu.Unlock()
		c.flushWakes()
		q.signal()
		c.s.m.backpressureWaits.Add(1)
		c.waitTimer.Reset(wait)
		select {
		case <-ch:
			c.waitTimer.Stop()
		case <-c.waitTimer.C:
			q.mu.Lock()
			q.stalled = true
			q.mu.Unlock()
		case <-c.ctx.Done():
			c.waitTimer.Stop()
			c.s.m.drop(dropGone)
			c.s.pool.put(pk)
			return
		}
	}
}

func (c *conn) handleNotePreferred(fl uint32) error {
	if fl != 1 {
		return fmt.Errorf("NotePreferred of %d bytes", fl)
	}
	b, err := c.br.ReadByte()
	if err != nil {
		return err
	}
	v := b != 0
	if c.preferred.Swap(v) != v {
		if v {
			c.s.m.homeConns.Add(1)
		} else {
			c.s.m.homeConns.Add(-1)
		}
	}
	return nil
}

func (c *conn) handlePing(fl uint32) error {
	if fl < derp.PingLen || fl > derp.MaxPingLen {
		return fmt.Errorf("Ping of %d bytes", fl)
	}
	b, err := c.br.Peek(derp.PingLen)
	if err != nil {
		return err
	}
	data := [derp.PingLen]byte(b)
	if _, err := c.br.Discard(int(fl)); err != nil {
		return err
	}
	c.s.m.pings.Add(1)
	c.q.setPong(data)
	return nil
}

func (c *conn) handleClosePeer(fl uint32) error {
	if fl != derp.KeyLen || !c.canMesh {
		return fmt.Errorf("ClosePeer (len %d) from non-mesh or malformed client", fl)
	}
	k, err := c.readKey()
	if err != nil {
		return err
	}
	n := c.s.closePeer(k)
	c.log.Info("mesh ClosePeer", "peer", k.ShortString(), "conns", n)
	return nil
}
