package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// ClientInfo is what a client declared at login (the opened ClientInfo frame).
type ClientInfo = derp.ClientInfo

// VerifyFunc admits or rejects a (non-mesh) client after login. A non-nil
// error rejects it: the connection is closed without an error frame, as the
// official derper does.
type VerifyFunc func(ctx context.Context, client key.NodePublic, info ClientInfo, remote netip.AddrPort) error

// Options configures a Server. Only PrivateKey is required.
type Options struct {
	// PrivateKey is the server's DERP key (a node-style Curve25519 key).
	PrivateKey key.NodePrivate
	// Logger receives connection-level events; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// MeshKey is the regional mesh pre-shared key (64 hex digits); empty
	// disables meshing. Clients presenting it may watch connections and
	// forward packets, and skip Verify and rate limits.
	MeshKey string
	// MeshWith lists mesh peers to dial: "host[:port]", "host/dialhost" (as
	// derper's -mesh-with) or a full "http(s)://host:port/derp" URL. A bare
	// host means https://host/derp.
	MeshWith []string
	// MeshDial, if set, replaces the TCP dialer of the mesh client (tests,
	// "host/dialhost" entries are handled before it).
	MeshDial DialFunc
	// MeshTLS is the client TLS config for https mesh peers (nil: system roots).
	MeshTLS TLSConfigFunc

	// Verify, if set, is called for every non-mesh client after login.
	Verify VerifyFunc
	// VerifyTimeout bounds one Verify call; default 5s.
	VerifyTimeout time.Duration

	// QueueDepth is the per-client packet queue length; default 256.
	QueueDepth int
	// QueueBytes bounds the buffer memory queued per client; default 1 MiB.
	QueueBytes int
	// DiscoQueueDepth is the per-client disco queue (drop-oldest, never
	// waits); default 32 as upstream.
	DiscoQueueDepth int
	// BackpressureWait is how long a sender's reader may wait for room in a
	// full destination queue before dropping the oldest packet. Waiting
	// slows the sending TCP flow instead of dropping; once a wait times out
	// the queue counts as stalled and later packets drop without waiting
	// until the receiver makes progress. Default 250ms; negative disables
	// waiting (pure drop-oldest, as upstream).
	BackpressureWait time.Duration
	// WriteTimeout is the per-batch write deadline for regular clients
	// (derper -tcp-write-timeout); default 2s, negative disables. Mesh
	// peers always get 30s.
	WriteTimeout time.Duration
	// RateLimitBytesPerSec, if positive, applies a per-client receive rate
	// limit by TCP back-pressure (never drops). Mesh peers are exempt.
	RateLimitBytesPerSec float64
	// RateLimitBurst is the limiter burst; raised to at least one maximal frame.
	RateLimitBurst int

	// RestartReconnectIn and RestartTryFor fill the Restarting frame sent
	// to every client by Close; defaults 1s and 60s.
	RestartReconnectIn, RestartTryFor time.Duration

	// BootstrapDNSNames are published at /bootstrap-dns.
	BootstrapDNSNames []string
	// LookupNetIP resolves BootstrapDNSNames; nil means net.DefaultResolver.
	LookupNetIP func(ctx context.Context, network, host string) ([]netip.Addr, error)
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 5 * time.Second
	}
	if o.QueueDepth <= 0 {
		o.QueueDepth = 256
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 1 << 20
	}
	if o.QueueBytes < maxBufSize {
		o.QueueBytes = maxBufSize
	}
	if o.DiscoQueueDepth <= 0 {
		o.DiscoQueueDepth = 32
	}
	if o.BackpressureWait == 0 {
		o.BackpressureWait = 250 * time.Millisecond
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 2 * time.Second
	}
	if o.RateLimitBurst < maxBufSize {
		o.RateLimitBurst = maxBufSize
	}
	if o.RestartReconnectIn <= 0 {
		o.RestartReconnectIn = time.Second
	}
	if o.RestartTryFor <= 0 {
		o.RestartTryFor = time.Minute
	}
}

// Server is a DERP relay. Create it with New, serve it with ServeHTTP (or
// Handler) and ServeSTUN, stop it with Close.
type Server struct {
	opts    Options
	priv    key.NodePrivate
	pub     key.NodePublic
	meshKey derp.MeshKey
	log     *slog.Logger
	now     func() time.Time

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	conns  sync.WaitGroup // connection handlers and mesh dialers

	// gen is bumped (under mu) whenever routing changes, invalidating the
	// per-connection destination caches.
	gen     atomic.Uint64
	connNum atomic.Uint64
	m       counters
	bdns    bootstrapDNS
	pool    pktPool
	metaState
	writers sync.Pool // *bufio.Writer borrowed by writers while they have work
	// noInline turns inline writes off (tests): every batch goes through
	// the destination's writer goroutine.
	noInline bool

	mu sync.Mutex
	// Guarded by mu:
	closed     bool
	clients    map[key.NodePublic]*clientSet
	forwarders map[key.NodePublic]*meshPeer                   // mesh: clients of other relays; first wins
	watchers   map[*conn]struct{}                             // mesh peers that sent WatchConns
	sentTo     map[key.NodePublic]map[key.NodePublic]struct{} // src → local dsts that received from src
	all        map[*conn]struct{}                             // every registered connection
	meshPeers  []*meshPeer                                    // outgoing mesh connections
}

// clientSet is every connection of one key; the active one receives
// traffic ("last writer is active", as upstream).
type clientSet struct {
	conns  []*conn
	active *conn
}

// New returns a Server. It starts the mesh dialers of opts.MeshWith.
func New(opts Options) (*Server, error) {
	if opts.PrivateKey.IsZero() {
		return nil, errors.New("relay: Options.PrivateKey is required")
	}
	opts.setDefaults()
	s := &Server{
		opts:       opts,
		priv:       opts.PrivateKey,
		pub:        opts.PrivateKey.Public(),
		log:        opts.Logger,
		now:        opts.Now,
		clients:    map[key.NodePublic]*clientSet{},
		forwarders: map[key.NodePublic]*meshPeer{},
		watchers:   map[*conn]struct{}{},
		sentTo:     map[key.NodePublic]map[key.NodePublic]struct{}{},
		all:        map[*conn]struct{}{},
	}
	if opts.MeshKey != "" {
		mk, err := derp.ParseMeshKey(opts.MeshKey)
		if err != nil {
			return nil, fmt.Errorf("relay: mesh key: %w", err)
		}
		s.meshKey = mk
	}
	if len(opts.MeshWith) > 0 && s.meshKey.IsZero() {
		return nil, errors.New("relay: MeshWith requires MeshKey (derper: --mesh-with requires --mesh-psk-file)")
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.bdns.init(opts)
	for _, h := range opts.MeshWith {
		mp, err := s.newMeshPeer(h)
		if err != nil {
			s.cancel()
			return nil, err
		}
		s.meshPeers = append(s.meshPeers, mp)
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			mp.run(s.ctx)
		}()
	}
	return s, nil
}

// PublicKey returns the server's DERP public key.
func (s *Server) PublicKey() key.NodePublic { return s.pub }

// HasMeshKey reports whether the server accepts mesh peers.
func (s *Server) HasMeshKey() bool { return !s.meshKey.IsZero() }

// Close sends a Restarting frame to every client, gives writers a moment to
// flush it, closes all connections and stops the mesh dialers. It waits for
// connection goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*conn, 0, len(s.all))
	for c := range s.all {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	for _, c := range conns {
		c.q.pushCtrl(ctrlMsg{kind: ctrlRestarting})
	}
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	for _, c := range conns {
		select {
		case <-c.q.flushedRestart:
		case <-deadline.C:
		case <-c.done:
		}
	}
	s.cancel()
	for _, c := range conns {
		c.close()
	}
	s.conns.Wait()
	return nil
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// registerClient adds c to the routing table and tells watchers.
func (s *Server) registerClient(c *conn) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("server closed")
	}
	s.all[c] = struct{}{}
	cs := s.clients[c.key]
	if cs == nil {
		cs = &clientSet{}
		s.clients[c.key] = cs
	}
	cs.conns = append(cs.conns, c)
	cs.active = c
	if len(cs.conns) > 1 {
		for _, d := range cs.conns {
			d.isDup.Store(true)
		}
	}
	s.gen.Add(1)
	s.m.accepts.Add(1)
	if c.canMesh {
		s.m.meshConns.Add(1)
	}
	s.broadcastLocked(ctrlMsg{kind: ctrlPeerPresent, peer: c.key, addr: c.remote, flags: c.presentFlags()})
	return nil
}

// unregisterClient removes c; when it was the key's last connection,
// watchers and everyone who heard from the key learn it is gone.
func (s *Server) unregisterClient(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.all, c)
	delete(s.watchers, c)
	if c.canMesh {
		s.m.meshConns.Add(-1)
	}
	if c.preferred.Load() {
		s.m.homeConns.Add(-1)
	}
	cs := s.clients[c.key]
	if cs == nil {
		return
	}
	for i, d := range cs.conns {
		if d == c {
			cs.conns = append(cs.conns[:i], cs.conns[i+1:]...)
			break
		}
	}
	s.gen.Add(1)
	switch len(cs.conns) {
	case 0:
		delete(s.clients, c.key)
		s.broadcastLocked(ctrlMsg{kind: ctrlPeerGone, peer: c.key})
		if s.forwarders[c.key] == nil {
			s.peerGoneFromRegionLocked(c.key)
		}
	case 1:
		cs.conns[0].isDup.Store(false)
		cs.active = cs.conns[0]
	default:
		if cs.active == c {
			cs.active = cs.conns[len(cs.conns)-1]
		}
	}
}

// noteActivity implements "last writer is active" for duplicate keys.
func (s *Server) noteActivity(c *conn) {
	if !c.isDup.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.clients[c.key]; cs != nil && cs.active != c {
		cs.active = c
		s.gen.Add(1)
	}
}

// broadcastLocked queues a peer state change to every watcher.
func (s *Server) broadcastLocked(m ctrlMsg) {
	for w := range s.watchers {
		w.q.pushCtrl(m)
	}
}

// addWatcher subscribes mesh peer c and queues the current client list.
func (s *Server) addWatcher(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.watchers[c]; ok {
		return
	}
	s.watchers[c] = struct{}{}
	for _, cs := range s.clients {
		for _, d := range cs.conns {
			c.q.pushCtrl(ctrlMsg{kind: ctrlPeerPresent, peer: d.key, addr: d.remote, flags: d.presentFlags()})
		}
	}
}

// peerGoneFromRegionLocked tells every local client that received packets
// from peer that peer has left the region.
func (s *Server) peerGoneFromRegionLocked(peer key.NodePublic) {
	for dst := range s.sentTo[peer] {
		if cs := s.clients[dst]; cs != nil {
			for _, d := range cs.conns {
				d.q.pushCtrl(ctrlMsg{kind: ctrlPeerGone, peer: peer, reason: derp.PeerGoneDisconnected})
			}
		}
	}
	delete(s.sentTo, peer)
}

// route is a cached routing decision.
type route struct {
	gen uint64
	dst *conn     // local active connection, or nil
	fwd *meshPeer // mesh forwarder when no local connection
	dup bool      // several connections and none active (drop as dup_client)
}

// lookupRoute resolves dst for packets from src, recording that dst hears
// from src (for PeerGone fan-out).
func (s *Server) lookupRoute(src, dst key.NodePublic) route {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := route{gen: s.gen.Load()}
	if cs := s.clients[dst]; cs != nil {
		r.dst = cs.active
		r.dup = cs.active == nil
		m := s.sentTo[src]
		if m == nil {
			m = map[key.NodePublic]struct{}{}
			s.sentTo[src] = m
		}
		m[dst] = struct{}{}
		return r
	}
	r.fwd = s.forwarders[dst]
	return r
}

// addForwarder records that key k is reachable through mesh peer mp.
func (s *Server) addForwarder(k key.NodePublic, mp *meshPeer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forwarders[k] == nil {
		s.forwarders[k] = mp
		s.gen.Add(1)
	}
}

// removeForwarder forgets k's route through mp; if k is then gone from the
// whole region, local clients that heard from it are told.
func (s *Server) removeForwarder(k key.NodePublic, mp *meshPeer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forwarders[k] != mp {
		return
	}
	delete(s.forwarders, k)
	s.gen.Add(1)
	if s.clients[k] == nil {
		s.peerGoneFromRegionLocked(k)
	}
}

// closePeer closes every connection of k (mesh ClosePeer).
func (s *Server) closePeer(k key.NodePublic) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.clients[k]
	if cs == nil {
		return 0
	}
	for _, c := range cs.conns {
		c.close()
	}
	return len(cs.conns)
}

// IsConnected reports whether k has a local connection (tests, status pages).
func (s *Server) IsConnected(k key.NodePublic) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clients[k] != nil
}

// HasForwarder reports whether k is reachable through a mesh peer.
func (s *Server) HasForwarder(k key.NodePublic) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.forwarders[k] != nil
}

// SetHealth sends a Health frame with text to every connected client; the
// empty string clears a previously sent problem. (Official clients show it
// as a per-region health warning; derper itself never sends one.)
func (s *Server) SetHealth(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.all {
		c.q.pushCtrl(ctrlMsg{kind: ctrlHealth, text: text})
	}
}
