package magicsock

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/internal/clock"
	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/netmap"
	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/disco"
	"weft.dev/weft/wire/key"
)

// Options configures a Conn. The zero value uses the OS network on a random
// port.
type Options struct {
	// Logger receives events; nil discards them. Per-packet problems are
	// never logged above Debug, so hostile traffic cannot flood the log.
	Logger *slog.Logger
	// Clock drives every timer; nil is the real clock.
	Clock clock.Clock
	// Port is the UDP port for both families (0: any; the IPv6 socket
	// tries the IPv4 port first).
	Port uint16
	// Net opens sockets; nil is OSNetwork.
	Net Network
	// DERPOverHTTP dials DERP nodes over plain HTTP (tailscaled's
	// TS_DEBUG_USE_DERP_HTTP). Nodes with DERPPort 80 always use HTTP.
	DERPOverHTTP bool
	// DERPTLSConfig is the base TLS config for DERP (nil: system roots).
	DERPTLSConfig *tls.Config
	// DERPDial replaces the TCP dialer for DERP.
	DERPDial derpclient.DialFunc
	// DisableSTUN turns off endpoint discovery (tests of DERP-only paths).
	DisableSTUN bool
}

// Conn is the magic socket. Create it with New; give it to wireguard-go via
// Bind; feed it keys and network maps.
type Conn struct {
	log       *slog.Logger
	clock     clock.Clock
	opts      Options
	discoPriv key.DiscoPrivate
	discoPub  key.DiscoPublic
	pconn4    PacketConn // nil if the host has no IPv4
	pconn6    PacketConn // nil if the host has no IPv6
	bind      *bind

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines

	// derpRecv carries WireGuard packets from the DERP readers to the
	// bind's DERP receive function.
	derpRecv chan derpPacket
	// localKick and reachKick wake the notifier goroutine.
	localKick chan struct{}
	reachKick chan struct{}

	stats counters

	mu sync.Mutex
	// guarded by mu:
	closed     bool
	privKey    key.NodePrivate
	pubKey     key.NodePublic
	peers      map[key.NodePublic]*endpoint
	byDisco    map[key.DiscoPublic]*discoPeer
	byAddr     map[netip.AddrPort]*endpoint // UDP source → peer, learned by disco
	sentPings  map[disco.TxID]*sentPing
	derpMap    *ctrl.DERPMap
	derps      map[int]*derpConn
	home       int
	nc         netcheckState
	endpoints  []engine.Endpoint
	tunnelPfx  []netip.Prefix // self and peer tailnet addresses: never local endpoints
	endpointAt time.Time      // when endpoints were last determined
	netInfo    *ctrl.NetInfo
	onLocal    func(engine.LocalState)
	onReach    func(bool)
	reachable  bool               // last value given to onReach
	reachKnown bool               // onReach has been told reachable
	pendingCMM map[*endpoint]bool // CallMeMaybe waiting for a fresh STUN round
	cleanupT   clock.Timer
	stunT      clock.Timer
}

// discoPeer is what a disco key maps to: the shared box key and the peers
// advertising it (normally one).
type discoPeer struct {
	shared disco.SharedKey
	eps    []*endpoint
}

// counters are cheap atomic metrics (never logged per packet).
type counters struct {
	recvDiscoBadPeer atomic.Int64
	recvDiscoBadBox  atomic.Int64
	recvNotWG        atomic.Int64
	recvDERPUnknown  atomic.Int64
	derpQueueDrops   atomic.Int64
	sendNoPath       atomic.Int64
}

// New opens the UDP sockets and returns a Conn. It needs SetPrivateKey and
// SetNetworkMap before it can reach anyone.
func New(opts Options) (*Conn, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Net == nil {
		opts.Net = OSNetwork{}
	}
	c := &Conn{
		log:        opts.Logger,
		clock:      opts.Clock,
		opts:       opts,
		discoPriv:  key.NewDisco(),
		derpRecv:   make(chan derpPacket),
		localKick:  make(chan struct{}, 1),
		reachKick:  make(chan struct{}, 1),
		peers:      map[key.NodePublic]*endpoint{},
		byDisco:    map[key.DiscoPublic]*discoPeer{},
		byAddr:     map[netip.AddrPort]*endpoint{},
		sentPings:  map[disco.TxID]*sentPing{},
		derps:      map[int]*derpConn{},
		pendingCMM: map[*endpoint]bool{},
	}
	c.discoPub = c.discoPriv.Public()
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var err4, err6 error
	c.pconn4, err4 = opts.Net.ListenUDP("udp4", opts.Port)
	if err4 != nil && opts.Port != 0 {
		// As tailscaled's bindSocket: the configured port, else any port.
		c.log.Warn("magicsock: UDP port in use, picking another", "port", opts.Port, "err", err4)
		c.pconn4, err4 = opts.Net.ListenUDP("udp4", 0)
	}
	port6 := opts.Port
	if c.pconn4 != nil {
		port6 = c.pconn4.LocalAddrPort().Port()
	}
	c.pconn6, err6 = opts.Net.ListenUDP("udp6", port6)
	if err6 != nil && port6 != 0 {
		c.pconn6, err6 = opts.Net.ListenUDP("udp6", 0)
	}
	if c.pconn4 == nil && c.pconn6 == nil {
		return nil, fmt.Errorf("magicsock: listen on UDP port %d: %w", opts.Port, errors.Join(err4, err6))
	}
	if c.pconn4 != nil {
		c.pconn4 = newRebindConn(opts.Net, "udp4", c.pconn4)
	}
	if c.pconn6 != nil {
		c.pconn6 = newRebindConn(opts.Net, "udp6", c.pconn6)
	}
	c.bind = newBind(c)
	c.wg.Add(1)
	go c.notifier()
	c.log.Info("magicsock: listening", "udp4", c.localAddr(c.pconn4), "udp6", c.localAddr(c.pconn6), "disco", c.discoPub.ShortString())
	return c, nil
}

func (c *Conn) localAddr(pc PacketConn) netip.AddrPort {
	if pc == nil {
		return netip.AddrPort{}
	}
	return pc.LocalAddrPort()
}

// LocalPort returns the bound UDP port (IPv4 socket's if both exist).
func (c *Conn) LocalPort() uint16 {
	if c.pconn4 != nil {
		return c.pconn4.LocalAddrPort().Port()
	}
	return c.pconn6.LocalAddrPort().Port()
}

// DiscoPublic returns this process's disco key.
func (c *Conn) DiscoPublic() key.DiscoPublic { return c.discoPub }

// Close stops everything and closes the sockets.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, ep := range c.peers {
		ep.stopLocked()
	}
	for _, sp := range c.sentPings {
		sp.timer.Stop()
	}
	for _, t := range []clock.Timer{c.cleanupT, c.stunT} {
		if t != nil {
			t.Stop()
		}
	}
	c.mu.Unlock()
	c.cancel()
	c.bind.Close()
	var errs []error
	for _, pc := range []PacketConn{c.pconn4, c.pconn6} {
		if pc != nil {
			errs = append(errs, pc.Close())
		}
	}
	c.wg.Wait()
	return errors.Join(errs...)
}

// SetPrivateKey sets the node key (used as the DERP identity). Changing it
// reconnects every DERP connection; zero disconnects them.
func (c *Conn) SetPrivateKey(k key.NodePrivate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || k == c.privKey {
		return
	}
	c.privKey = k
	c.pubKey = k.Public()
	for r, dc := range c.derps {
		dc.close()
		delete(c.derps, r)
	}
	if !k.IsZero() && c.home != 0 {
		c.derpConnLocked(c.home)
	}
}

// SetLocalStateCallback registers fn, called (in its own goroutine, in
// order) whenever endpoints, home DERP or disco key change. It is called
// once right away with the current state.
func (c *Conn) SetLocalStateCallback(fn func(engine.LocalState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onLocal = fn
	c.notifyLocalLocked()
}

// notifyLocalLocked reports the current local state.
func (c *Conn) notifyLocalLocked() {
	fn := c.onLocal
	if fn == nil {
		return
	}
	// Calling out under mu would invite deadlocks with the daemon, so one
	// notifier goroutine delivers the latest state, in order.
	select {
	case c.localKick <- struct{}{}:
	default:
	}
}

func (c *Conn) localStateLocked() engine.LocalState {
	ls := engine.LocalState{Endpoints: slices.Clone(c.endpoints), DiscoKey: c.discoPub}
	if c.netInfo != nil {
		ni := *c.netInfo
		ls.NetInfo = &ni
	}
	return ls
}

func (c *Conn) notifier() {
	defer c.wg.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.reachKick:
			c.deliverReach()
			continue
		case <-c.localKick:
		}
		c.mu.Lock()
		fn, ls := c.onLocal, c.localStateLocked()
		c.mu.Unlock()
		if fn != nil {
			fn(ls)
		}
	}
}

// SetNetworkMap applies the peers (node key, disco key, endpoints, home
// region) and DERP map of nm. Peers that stay keep their path state.
func (c *Conn) SetNetworkMap(nm *netmap.NetworkMap) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || nm == nil {
		return
	}
	// The TUN interface carries the node's own tailnet address; it must
	// never be advertised as a UDP endpoint (tailscaled skips its own
	// interface and Tailscale ranges the same way).
	c.tunnelPfx = slices.Clone(nm.Addresses())
	for _, n := range nm.Peers {
		if n != nil {
			c.tunnelPfx = append(c.tunnelPfx, n.Addresses...)
		}
	}
	if nm.DERPMap != nil && !derpMapEqual(c.derpMap, nm.DERPMap) {
		c.setDERPMapLocked(nm.DERPMap)
	}
	seen := make(map[key.NodePublic]bool, len(nm.Peers))
	now := c.clock.Now()
	for _, n := range nm.Peers {
		if n == nil || n.Key.IsZero() || n.Key == c.pubKey {
			continue
		}
		seen[n.Key] = true
		ep := c.peers[n.Key]
		if ep == nil {
			ep = newEndpoint(c, n.Key)
			c.peers[n.Key] = ep
		}
		c.updateEndpointLocked(ep, n)
		ep.sendPendingInitLocked(now)
	}
	for k, ep := range c.peers {
		if !seen[k] {
			c.removeEndpointLocked(ep)
		}
	}
}

// isTunnelAddrLocked reports whether ip is a tailnet address (self or a
// peer's): such addresses are never UDP endpoints.
func (c *Conn) isTunnelAddrLocked(ip netip.Addr) bool {
	return slices.ContainsFunc(c.tunnelPfx, func(p netip.Prefix) bool { return p.Contains(ip) })
}

func homeOf(n *ctrl.Node) int {
	if n.HomeDERP != 0 {
		return n.HomeDERP
	}
	if r, err := ctrl.ParseLegacyDERPString(n.DERP); err == nil {
		return r
	}
	return 0
}

func (c *Conn) updateEndpointLocked(ep *endpoint, n *ctrl.Node) {
	ep.homeRegion = homeOf(n)
	ep.wgOnly = n.IsWireGuardOnly
	if n.DiscoKey != ep.discoKey {
		if !ep.discoKey.IsZero() {
			c.unlinkDiscoLocked(ep)
		}
		ep.discoKey = n.DiscoKey
		ep.resetPathLocked()
		if !n.DiscoKey.IsZero() {
			dp := c.byDisco[n.DiscoKey]
			if dp == nil {
				dp = &discoPeer{shared: disco.Shared(c.discoPriv, n.DiscoKey)}
				c.byDisco[n.DiscoKey] = dp
			}
			dp.eps = append(dp.eps, ep)
		}
	}
	ep.setNetmapEndpointsLocked(n.Endpoints)
}

func (c *Conn) unlinkDiscoLocked(ep *endpoint) {
	dp := c.byDisco[ep.discoKey]
	if dp == nil {
		return
	}
	dp.eps = slices.DeleteFunc(dp.eps, func(e *endpoint) bool { return e == ep })
	if len(dp.eps) == 0 {
		delete(c.byDisco, ep.discoKey)
	}
}

func (c *Conn) removeEndpointLocked(ep *endpoint) {
	ep.stopLocked()
	c.unlinkDiscoLocked(ep)
	for a, e := range c.byAddr {
		if e == ep {
			delete(c.byAddr, a)
		}
	}
	for tx, sp := range c.sentPings {
		if sp.ep == ep {
			sp.timer.Stop()
			delete(c.sentPings, tx)
		}
	}
	delete(c.pendingCMM, ep)
	delete(c.peers, ep.nodeKey)
}

// peerByKey returns the endpoint of a netmap peer.
func (c *Conn) peerByKey(k key.NodePublic) *endpoint {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peers[k]
}

// Metrics returns counters of dropped input, for debugging and tests.
func (c *Conn) Metrics() map[string]int64 {
	return map[string]int64{
		"recv_disco_bad_peer": c.stats.recvDiscoBadPeer.Load(),
		"recv_disco_bad_box":  c.stats.recvDiscoBadBox.Load(),
		"recv_not_wireguard":  c.stats.recvNotWG.Load(),
		"recv_derp_unknown":   c.stats.recvDERPUnknown.Load(),
		"derp_queue_drops":    c.stats.derpQueueDrops.Load(),
		"send_no_path":        c.stats.sendNoPath.Load(),
	}
}

// goLocked runs f in a goroutine that Close waits for; it does nothing once
// the Conn is closed.
func (c *Conn) goLocked(f func()) {
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
}
