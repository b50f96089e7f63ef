package magicsock

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/disco"
	"weft.dev/weft/wire/key"
)

// DERP client constants (derp-disco.md §1.1, §1.12).
const (
	derpQueueDepth         = 32
	derpInactiveCleanup    = 60 * time.Second
	derpCleanStaleInterval = 15 * time.Second
	derpReadTimeout        = 120 * time.Second
	derpMaxBackoff         = 5 * time.Second
	derpNodeDialTimeout    = 5 * time.Second
)

// derpPacket is a WireGuard packet read from DERP, handed to the bind's
// DERP receive function. pkt is only valid until ack is signalled.
type derpPacket struct {
	ep  *endpoint
	pkt []byte
	ack chan struct{}
}

type derpWrite struct {
	dst key.NodePublic
	buf *[]byte
}

// derpConn is the connection to one region: a connector/reader goroutine
// and a writer goroutine draining a drop-oldest queue.
type derpConn struct {
	c      *Conn
	region int
	ctx    context.Context
	cancel context.CancelFunc
	q      chan derpWrite
	ack    chan struct{}

	lastWrite atomic.Int64 // unix nanos of the last queued packet
	home      atomic.Bool

	mu sync.Mutex
	// guarded by mu:
	client *derpclient.Client
	ready  chan struct{} // closed while client is set
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// derpConnLocked returns the connection to region, starting it if needed.
// It returns nil when there is no node key or the region is unknown.
func (c *Conn) derpConnLocked(region int) *derpConn {
	if dc := c.derps[region]; dc != nil {
		return dc
	}
	if c.closed || c.privKey.IsZero() || c.derpMap == nil || c.derpMap.Regions[region] == nil {
		return nil
	}
	dc := &derpConn{c: c, region: region, q: make(chan derpWrite, derpQueueDepth), ack: make(chan struct{}, 1), ready: make(chan struct{})}
	dc.ctx, dc.cancel = context.WithCancel(c.ctx)
	dc.home.Store(region == c.home)
	dc.lastWrite.Store(c.clock.Now().UnixNano())
	c.derps[region] = dc
	c.wg.Add(2)
	go dc.run(c.privKey)
	go dc.writer()
	if c.cleanupT == nil {
		c.cleanupT = c.clock.AfterFunc(derpCleanStaleInterval, c.cleanStaleDERP)
	}
	return dc
}

// cleanStaleDERP closes non-home connections idle for 60 s.
func (c *Conn) cleanStaleDERP() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanupT = nil
	if c.closed {
		return
	}
	now := c.clock.Now()
	others := false
	for r, dc := range c.derps {
		if r == c.home {
			continue
		}
		if now.Sub(time.Unix(0, dc.lastWrite.Load())) > derpInactiveCleanup {
			c.log.Debug("magicsock: closing idle DERP connection", "region", r)
			dc.close()
			delete(c.derps, r)
			continue
		}
		others = true
	}
	if others {
		c.cleanupT = c.clock.AfterFunc(derpCleanStaleInterval, c.cleanStaleDERP)
	}
}

func (dc *derpConn) close() { dc.cancel() }

func (dc *derpConn) setClient(cl *derpclient.Client) {
	dc.mu.Lock()
	if cl != nil {
		dc.client = cl
		close(dc.ready)
	} else {
		dc.client = nil
		dc.ready = make(chan struct{})
	}
	dc.mu.Unlock()
	dc.c.updateReachable()
}

// connected reports whether the region's connection is logged in.
func (dc *derpConn) connected() bool {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	return dc.client != nil
}

// waitClient blocks until connected (or the connection is shut down).
func (dc *derpConn) waitClient() *derpclient.Client {
	for {
		dc.mu.Lock()
		cl, ready := dc.client, dc.ready
		dc.mu.Unlock()
		if cl != nil {
			return cl
		}
		select {
		case <-ready:
		case <-dc.ctx.Done():
			return nil
		}
	}
}

func (dc *derpConn) setHome(home bool) {
	if dc.home.Swap(home) == home {
		return
	}
	dc.mu.Lock()
	cl := dc.client
	dc.mu.Unlock()
	if cl != nil {
		cl.NotePreferred(home)
	}
}

// sendDERP queues pkt for dst via region (copying it). Like tailscaled's
// per-region queue it drops the oldest packet when full.
func (c *Conn) sendDERP(region int, dst key.NodePublic, pkt []byte) bool {
	c.mu.Lock()
	dc := c.derpConnLocked(region)
	c.mu.Unlock()
	if dc == nil {
		return false
	}
	bp := bufPool.Get().(*[]byte)
	*bp = append((*bp)[:0], pkt...)
	w := derpWrite{dst: dst, buf: bp}
	dc.lastWrite.Store(c.clock.Now().UnixNano())
	for range 3 {
		select {
		case dc.q <- w:
			return true
		default:
		}
		select {
		case old := <-dc.q:
			bufPool.Put(old.buf)
			c.stats.derpQueueDrops.Add(1)
		default:
		}
	}
	bufPool.Put(bp)
	c.stats.derpQueueDrops.Add(1)
	return false
}

func (dc *derpConn) writer() {
	defer dc.c.wg.Done()
	for {
		var w derpWrite
		select {
		case w = <-dc.q:
		case <-dc.ctx.Done():
			return
		}
		cl := dc.waitClient()
		if cl == nil {
			bufPool.Put(w.buf)
			return
		}
		if err := cl.Send(w.dst, *w.buf); err != nil {
			cl.Close() // the reader notices and reconnects
		}
		bufPool.Put(w.buf)
	}
}

// run connects (with backoff), reads until the connection breaks, and
// starts over until the region is closed.
func (dc *derpConn) run(priv key.NodePrivate) {
	c := dc.c
	defer c.wg.Done()
	backoff := 50 * time.Millisecond
	for dc.ctx.Err() == nil {
		cl, err := c.dialDERP(dc.ctx, dc.region, priv)
		if err != nil {
			if dc.ctx.Err() != nil {
				return
			}
			c.log.Info("magicsock: DERP connect failed", "region", dc.region, "err", err, "retry", backoff)
			select {
			case <-time.After(backoff):
			case <-dc.ctx.Done():
				return
			}
			backoff = min(backoff*2, derpMaxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		if dc.home.Load() {
			cl.NotePreferred(true)
		}
		c.log.Debug("magicsock: DERP connected", "region", dc.region, "home", dc.home.Load())
		dc.setClient(cl)
		stop := context.AfterFunc(dc.ctx, func() { cl.Close() })
		err = dc.readLoop(cl)
		stop()
		dc.setClient(nil)
		cl.Close()
		c.forgetReverseRoutes(dc.region, key.NodePublic{})
		if dc.ctx.Err() != nil {
			return
		}
		c.log.Info("magicsock: DERP connection lost", "region", dc.region, "err", err)
		c.ReSTUN("derp-read-error")
	}
}

func (dc *derpConn) readLoop(cl *derpclient.Client) error {
	c := dc.c
	for {
		cl.SetReadDeadline(time.Now().Add(derpReadTimeout))
		m, err := cl.Recv()
		if err != nil {
			return err
		}
		switch m.Type {
		case derp.FrameRecvPacket:
			dc.handlePacket(m.Source, m.Packet)
		case derp.FramePeerGone:
			c.forgetReverseRoutes(dc.region, m.Peer)
		}
	}
}

func (dc *derpConn) handlePacket(src key.NodePublic, pkt []byte) {
	c := dc.c
	if disco.Looks(pkt) {
		c.handleDisco(pkt, netip.AddrPort{}, dc.region, src)
		return
	}
	c.mu.Lock()
	ep := c.peers[src]
	var probe []discoSend
	if ep != nil {
		ep.recvRegion = dc.region
		probe = ep.noteDERPRecvLocked(c.clock.Now())
	}
	c.mu.Unlock()
	if len(probe) > 0 {
		c.sendDisco(probe)
	}
	if ep == nil {
		c.stats.recvDERPUnknown.Add(1) // WireGuard from a key not in the netmap
		return
	}
	closed := c.bind.closedChan()
	select {
	case c.derpRecv <- derpPacket{ep: ep, pkt: pkt, ack: dc.ack}:
	case <-closed:
		return
	case <-dc.ctx.Done():
		return
	}
	select {
	case <-dc.ack:
	case <-dc.ctx.Done():
	}
}

// forgetReverseRoutes drops "peer heard on region" for peer (or every peer
// when peer is zero).
func (c *Conn) forgetReverseRoutes(region int, peer key.NodePublic) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, ep := range c.peers {
		if ep.recvRegion == region && (peer.IsZero() || k == peer) {
			ep.recvRegion = 0
		}
	}
}

// dialDERP logs in to the first reachable node of region.
func (c *Conn) dialDERP(ctx context.Context, region int, priv key.NodePrivate) (*derpclient.Client, error) {
	c.mu.Lock()
	var reg *ctrl.DERPRegion
	if c.derpMap != nil {
		reg = c.derpMap.Regions[region]
	}
	c.mu.Unlock()
	if reg == nil {
		return nil, fmt.Errorf("region %d not in DERP map", region)
	}
	var errs []error
	for _, n := range reg.Nodes {
		if n == nil || n.STUNOnly {
			continue
		}
		rawURL, opts := c.derpDialOptions(n)
		nctx, cancel := context.WithTimeout(ctx, derpNodeDialTimeout)
		cl, err := derpclient.DialOptions(nctx, rawURL, priv, opts)
		cancel()
		if err == nil {
			return cl, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("region %d has no DERP nodes", region)
	}
	return nil, errors.Join(errs...)
}

func (c *Conn) derpDialOptions(n *ctrl.DERPNode) (string, derpclient.Options) {
	scheme := "https"
	port := n.DERPPortOrDefault()
	if c.opts.DERPOverHTTP || n.DERPPort == 80 {
		scheme = "http"
		if n.DERPPort == 0 {
			port = 80
		}
	}
	rawURL := scheme + "://" + net.JoinHostPort(n.HostName, strconv.Itoa(port)) + "/derp"
	dialHost := n.HostName
	if ip, err := netip.ParseAddr(n.IPv4); err == nil {
		dialHost = ip.String()
	} else if ip, err := netip.ParseAddr(n.IPv6); err == nil {
		dialHost = ip.String()
	}
	base := c.opts.DERPDial
	if base == nil {
		var d net.Dialer
		base = d.DialContext
	}
	opts := derpclient.Options{
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return base(ctx, network, net.JoinHostPort(dialHost, strconv.Itoa(port)))
		},
	}
	cfg := &tls.Config{}
	if c.opts.DERPTLSConfig != nil {
		cfg = c.opts.DERPTLSConfig.Clone()
	}
	cfg.ServerName = n.HostName
	switch {
	case strings.HasPrefix(n.CertName, "sha256-raw:"):
		want, _ := hex.DecodeString(strings.TrimPrefix(n.CertName, "sha256-raw:"))
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("derp: no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if !bytes.Equal(sum[:], want) {
				return errors.New("derp: certificate does not match pinned " + n.CertName)
			}
			return nil
		}
	case n.InsecureForTests:
		cfg.InsecureSkipVerify = true
	case n.CertName != "":
		cfg.ServerName = n.CertName
	}
	opts.TLSConfig = cfg
	return rawURL, opts
}

// setDERPMapLocked installs a new DERP map: connections to vanished regions
// close, a vanished home is re-chosen.
func (c *Conn) setDERPMapLocked(m *ctrl.DERPMap) {
	c.derpMap = m
	for r, dc := range c.derps {
		if m.Regions[r] == nil {
			dc.close()
			delete(c.derps, r)
		}
	}
	if c.home != 0 && m.Regions[c.home] == nil {
		c.home = 0
	}
	c.nc.history = nil
	c.reSTUNLocked("derp-map-update")
}

func derpMapEqual(a, b *ctrl.DERPMap) bool { return reflect.DeepEqual(a, b) }

// setHomeLocked makes region the home DERP: connect, tell every
// connection whether it is the preferred one.
func (c *Conn) setHomeLocked(region int) {
	if region == c.home {
		if region != 0 {
			c.derpConnLocked(region)
		}
		return
	}
	c.log.Info("magicsock: home DERP", "region", region, "was", c.home)
	c.home = region
	if region != 0 {
		c.derpConnLocked(region)
	}
	for r, dc := range c.derps {
		c.goLocked(func() { dc.setHome(r == region) })
	}
	c.kickReachLocked()
}
