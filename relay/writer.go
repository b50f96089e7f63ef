package relay

import (
	"bufio"
	"time"

	"weft.dev/weft/wire/derp"
)

// keepAliveJitter derives the per-connection keepalive jitter in [0, 5s)
// from the client key, so no random source is needed.
func (c *conn) keepAliveJitter() time.Duration {
	k := c.key.Raw32()
	return time.Duration(int(k[0])<<8|int(k[1])) * 5 * time.Second / 65536
}

// writeLoop is the connection's writer goroutine (senders' readers may
// also write packets inline while it is idle, see inline.go). Each round
// it takes everything queued, writes it into one buffered writer and
// flushes once when the queue is empty, so a burst of packets costs few
// syscalls (and, under TLS, few records). The write buffer is borrowed
// from a pool only while there is something to write, bounding memory of
// idle connections.
func (c *conn) writeLoop() error {
	ka := time.NewTimer(derp.KeepAliveInterval + c.keepAliveJitter())
	defer ka.Stop()
	timeout := c.s.opts.WriteTimeout
	if c.canMesh {
		timeout = meshWriteTimeout
	}
	var b batch
	for {
		select {
		case <-c.q.wake:
		case <-ka.C:
			ka.Reset(derp.KeepAliveInterval + c.keepAliveJitter())
			c.q.pushCtrl(ctrlMsg{kind: ctrlKeepAlive})
			continue
		case <-c.ctx.Done():
			return nil
		}
		pending, ok := c.acquireSocket()
		if !ok {
			continue // a sender's reader is writing inline; it wakes us when done
		}
		err := c.writePending(pending, timeout)
		if err == nil {
			bw := c.s.getWriter(c.nc)
			err = c.writeRounds(bw, &b, timeout)
			if err == nil {
				err = bw.Flush()
			}
			c.s.putWriter(bw)
		}
		c.releaseSocket()
		if err != nil {
			c.s.release(&b)
			return err
		}
		if c.wroteRestart && !c.restartSignaled {
			c.restartSignaled = true
			close(c.q.flushedRestart)
		}
	}
}

// writeRounds writes batches until the queue is empty.
func (c *conn) writeRounds(bw *bufio.Writer, b *batch, timeout time.Duration) error {
	for {
		c.q.take(b)
		if b.empty() {
			return nil
		}
		if timeout > 0 {
			c.nc.SetWriteDeadline(c.s.now().Add(timeout))
		}
		if err := c.writeBatch(bw, b); err != nil {
			return err
		}
	}
}

func (c *conn) writeBatch(bw *bufio.Writer, b *batch) error {
	for i := range b.ctrl {
		if err := c.writeCtrl(bw, &b.ctrl[i]); err != nil {
			return err
		}
	}
	b.ctrl = b.ctrl[:0]
	if b.hasPong {
		if err := derp.WriteHeader(bw, derp.FramePong, derp.PingLen); err != nil {
			return err
		}
		for _, x := range b.pong {
			if err := bw.WriteByte(x); err != nil {
				return err
			}
		}
		b.hasPong = false
	}
	for _, list := range [2]*[]*packet{&b.disco, &b.pkts} {
		for i, pk := range *list {
			err := c.writePacket(bw, pk)
			c.s.pool.put(pk)
			(*list)[i] = nil
			if err != nil {
				*list = (*list)[i+1:]
				return err
			}
		}
		*list = (*list)[:0]
	}
	return nil
}

func (c *conn) writePacket(bw *bufio.Writer, pk *packet) error {
	if err := derp.WriteHeader(bw, derp.FrameRecvPacket, uint32(derp.KeyLen+len(pk.data))); err != nil {
		return err
	}
	if _, err := bw.Write(pk.src[:]); err != nil {
		return err
	}
	if _, err := bw.Write(pk.data); err != nil {
		return err
	}
	c.s.m.packetsSent.Add(1)
	c.s.m.bytesSent.Add(uint64(len(pk.data)))
	return nil
}

func (c *conn) writeCtrl(bw *bufio.Writer, m *ctrlMsg) error {
	var scratch [derp.PeerPresentLen]byte
	var p []byte
	var ft derp.FrameType
	switch m.kind {
	case ctrlPeerGone:
		ft, p = derp.FramePeerGone, derp.AppendPeerGone(scratch[:0], m.peer, m.reason)
		c.s.m.peerGoneFrames.Add(1)
	case ctrlPeerPresent:
		ft, p = derp.FramePeerPresent, derp.AppendPeerPresent(scratch[:0], derp.PeerPresent{Key: m.peer, Addr: m.addr, Flags: m.flags})
	case ctrlKeepAlive:
		ft = derp.FrameKeepAlive
	case ctrlRestarting:
		c.wroteRestart = true
		ft, p = derp.FrameRestarting, derp.AppendRestarting(scratch[:0], c.s.opts.RestartReconnectIn, c.s.opts.RestartTryFor)
	case ctrlHealth:
		return derp.WriteFrame(bw, derp.FrameHealth, []byte(m.text))
	}
	if err := derp.WriteHeader(bw, ft, uint32(len(p))); err != nil {
		return err
	}
	// Copy through the writer's own buffer so scratch stays on the stack.
	for len(p) > 0 {
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		n := copy(bw.AvailableBuffer()[:min(len(p), bw.Available())], p)
		if _, err := bw.Write(bw.AvailableBuffer()[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// release returns every packet in b to the pool (connection teardown).
func (s *Server) release(b *batch) {
	for _, list := range [2][]*packet{b.disco, b.pkts} {
		for _, pk := range list {
			if pk != nil {
				s.pool.put(pk)
				s.m.drop(dropGone)
			}
		}
	}
	b.disco, b.pkts = b.disco[:0], b.pkts[:0]
}

func (s *Server) getWriter(w interface{ Write([]byte) (int, error) }) *bufio.Writer {
	if bw, ok := s.writers.Get().(*bufio.Writer); ok {
		bw.Reset(w)
		return bw
	}
	return bufio.NewWriterSize(w, writeBufferSize)
}

func (s *Server) putWriter(bw *bufio.Writer) {
	bw.Reset(nil)
	s.writers.Put(bw)
}
