package wgengine

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"weft.dev/weft/internal/chachapoly"
	"weft.dev/weft/internal/clock"
	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/magicsock"
	"weft.dev/weft/node/netmap"
	"weft.dev/weft/node/netstack"
	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// TUNUserspace is the --tun value that selects the gVisor userspace stack.
const TUNUserspace = "userspace-networking"

// DefaultMTU is the tunnel MTU tailscaled uses (safeTUNMTU, §4.9).
const DefaultMTU = 1280

// Options configures an Engine.
type Options struct {
	// Logger receives events; nil discards them.
	Logger *slog.Logger
	// Clock drives magicsock's and the pinger's timers; nil is the real
	// clock.
	Clock clock.Clock
	// Port is the UDP port (--port); 0 picks one.
	Port uint16
	// Net opens UDP sockets; nil is the OS.
	Net magicsock.Network
	// TUN is a kernel interface name, or TUNUserspace ("" means userspace).
	TUN string
	// MTU is the tunnel MTU; default 1280.
	MTU int
	// ForwardInbound (userspace mode) forwards inbound TCP connections to
	// the node's tunnel address to the same port on the host's loopback.
	ForwardInbound bool
	// DERPOverHTTP, DERPTLSConfig, DERPDial and DisableSTUN are passed to
	// magicsock.
	DERPOverHTTP  bool
	DERPTLSConfig *tls.Config
	DERPDial      derpclient.DialFunc
	DisableSTUN   bool
}

// Engine is the real data plane. It implements engine.Engine.
type Engine struct {
	log   *slog.Logger
	opts  Options
	magic *magicsock.Conn
	dev   *device.Device
	tdev  tun.Device // what wireguard-go reads and writes
	ns    *netstack.Stack
	ktun  *kernelTUN
	filt  *filter
	pings *pinger

	mu sync.Mutex
	// guarded by mu:
	closed  bool
	nm      *netmap.NetworkMap
	privKey key.NodePrivate
	peerIPs map[key.NodePublic][]netip.Prefix // allowed IPs configured in wireguard-go
	addrs   []netip.Prefix
}

var _ engine.Engine = (*Engine)(nil)

// New starts the engine: sockets, TUN or netstack, and an empty device.
// Call Reconfig to give it a key and peers.
func New(opts Options) (*Engine, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MTU <= 0 {
		opts.MTU = DefaultMTU
	}
	if opts.TUN == "" {
		opts.TUN = TUNUserspace
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	e := &Engine{log: opts.Logger, opts: opts, peerIPs: map[key.NodePublic][]netip.Prefix{}}
	var err error
	e.magic, err = magicsock.New(magicsock.Options{
		Logger: opts.Logger, Clock: opts.Clock, Port: opts.Port, Net: opts.Net,
		DERPOverHTTP: opts.DERPOverHTTP, DERPTLSConfig: opts.DERPTLSConfig, DERPDial: opts.DERPDial,
		DisableSTUN: opts.DisableSTUN,
	})
	if err != nil {
		return nil, err
	}
	var inner tun.Device
	if opts.TUN == TUNUserspace {
		e.ns, err = netstack.New(netstack.Options{Logger: opts.Logger, MTU: opts.MTU, ForwardInbound: opts.ForwardInbound, SplitGSO: splitVirtio})
		inner = e.ns
	} else {
		e.ktun, err = newKernelTUN(opts.TUN, opts.MTU, opts.Logger)
		if e.ktun != nil {
			inner = e.ktun.dev
		}
	}
	if err != nil {
		e.magic.Close()
		return nil, err
	}
	e.filt = newFilter(inner)
	e.pings = newPinger(opts.Logger, opts.Clock, e.filt.inject)
	e.filt.pings = e.pings // before the device starts reading
	opts.Logger.Debug("wgengine: engine packets wake the TUN reader", "by", e.filt.inj.mode())
	e.tdev = e.filt
	e.dev = device.NewDevice(e.tdev, e.magic.Bind(), wgLogger(opts.Logger))
	// Transport data goes through weft's ChaCha20-Poly1305 (AVX-512 where
	// the CPU has it, x/crypto's otherwise; see internal/chachapoly).
	e.dev.SetTransportAEAD(chachapoly.New)
	opts.Logger.Info("wgengine: ChaCha20-Poly1305 for transport data", "impl", chachapoly.Implementation())
	// Peers get magicsock endpoints that must never roam to the raw source
	// address of a packet (derp-disco.md §5.3).
	e.dev.DisableSomeRoamingForBrokenMobileSemantics()
	if err := e.dev.Up(); err != nil {
		e.dev.Close()
		e.magic.Close()
		return nil, fmt.Errorf("wgengine: device up: %w", err)
	}
	return e, nil
}

func wgLogger(l *slog.Logger) *device.Logger {
	return &device.Logger{
		Verbosef: func(f string, a ...any) { l.Debug("wireguard: " + fmt.Sprintf(f, a...)) },
		Errorf:   func(f string, a ...any) { l.Warn("wireguard: " + fmt.Sprintf(f, a...)) },
	}
}

// Magicsock returns the engine's magic socket.
func (e *Engine) Magicsock() *magicsock.Conn { return e.magic }

// Netstack returns the userspace stack, or nil in kernel TUN mode.
func (e *Engine) Netstack() *netstack.Stack { return e.ns }

// SetLocalStateCallback implements engine.Engine.
func (e *Engine) SetLocalStateCallback(fn func(engine.LocalState)) { e.magic.SetLocalStateCallback(fn) }

// Reconfig implements engine.Engine.
func (e *Engine) Reconfig(nm *netmap.NetworkMap, cfg engine.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("wgengine: closed")
	}
	if nm == nil {
		nm = &netmap.NetworkMap{}
	}
	var uapi strings.Builder
	if cfg.PrivateKey != e.privKey {
		raw := cfg.PrivateKey.Raw32()
		fmt.Fprintf(&uapi, "private_key=%s\n", hex.EncodeToString(raw[:]))
	}
	if cfg.PrivateKey.IsZero() {
		// Logged out: no peers at all.
		uapi.WriteString("replace_peers=true\n")
		if err := e.dev.IpcSet(uapi.String()); err != nil {
			return fmt.Errorf("wgengine: clear device: %w", err)
		}
		e.magic.SetNetworkMap(&netmap.NetworkMap{DERPMap: nm.DERPMap})
		e.magic.SetPrivateKey(cfg.PrivateKey)
		e.privKey, e.nm = cfg.PrivateKey, nm
		clear(e.peerIPs)
		e.filt.set(nil, nil)
		return nil
	}
	// magicsock first: wireguard-go's ParseEndpoint asks it for the peers.
	e.magic.SetPrivateKey(cfg.PrivateKey)
	e.magic.SetNetworkMap(nm)
	want := map[key.NodePublic][]netip.Prefix{}
	for _, p := range nm.Peers {
		if p == nil || p.Key.IsZero() || p.Key == cfg.PrivateKey.Public() {
			continue
		}
		want[p.Key] = peerAllowedIPs(p, cfg)
	}
	for k := range e.peerIPs {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&uapi, "public_key=%s\nremove=true\n", hexKey(k))
		}
	}
	for k, ips := range want {
		old, had := e.peerIPs[k]
		if had && slices.Equal(old, ips) {
			continue // unchanged: leave the session alone
		}
		fmt.Fprintf(&uapi, "public_key=%s\n", hexKey(k))
		if !had {
			fmt.Fprintf(&uapi, "endpoint=%s\n", hexKey(k))
		}
		uapi.WriteString("replace_allowed_ips=true\n")
		for _, ip := range ips {
			fmt.Fprintf(&uapi, "allowed_ip=%s\n", ip)
		}
	}
	if uapi.Len() > 0 {
		if err := e.dev.IpcSet(uapi.String()); err != nil {
			return fmt.Errorf("wgengine: configure wireguard: %w", err)
		}
	}
	e.peerIPs, e.privKey, e.nm = want, cfg.PrivateKey, nm
	addrs := nm.Addresses()
	var addrErr error
	if !slices.Equal(addrs, e.addrs) || e.ktun != nil {
		// Best effort: the filter and peers stay configured even when an
		// address or route cannot be installed.
		addrErr = e.setAddrsLocked(addrs, want)
		e.addrs = slices.Clone(addrs)
	}
	e.filt.set(addrs, compileFilter(nm.PacketFilter, addrs, cfg.ShieldsUp))
	return addrErr
}

func (e *Engine) setAddrsLocked(addrs []netip.Prefix, peers map[key.NodePublic][]netip.Prefix) error {
	if e.ns != nil {
		return e.ns.SetAddresses(addrs)
	}
	var routes []netip.Prefix
	for _, ips := range peers {
		routes = append(routes, ips...)
	}
	return e.ktun.configure(addrs, routes)
}

func hexKey(k key.NodePublic) string {
	raw := k.Raw32()
	return hex.EncodeToString(raw[:])
}

// peerAllowedIPs is the peer's addresses plus the routes this node accepts:
// subnet routes with AcceptRoutes, default routes only from the chosen
// exit node (PeerAllowedIPs upstream, simplified).
func peerAllowedIPs(p *ctrl.Node, cfg engine.Config) []netip.Prefix {
	out := slices.Clone(p.Addresses)
	for _, pfx := range p.AllowedIPs {
		if slices.Contains(out, pfx) {
			continue
		}
		if pfx.Bits() == 0 {
			if cfg.ExitNode == "" || cfg.ExitNode != p.StableID {
				continue
			}
		} else if !cfg.AcceptRoutes {
			continue
		}
		out = append(out, pfx)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// Ping implements engine.Engine. A disco ping goes peer to peer through
// magicsock and reports the path; TSMP and ICMP pings go through
// WireGuard (pingInTunnel) and report only the round trip.
func (e *Engine) Ping(ctx context.Context, ip netip.Addr, typ engine.PingType) (engine.PingResult, error) {
	e.mu.Lock()
	nm := e.nm
	e.mu.Unlock()
	res := engine.PingResult{IP: ip}
	if nm == nil {
		res.Err = "no network map"
		return res, errors.New("ping: no network map yet")
	}
	peer := nm.PeerByIP(ip)
	if peer == nil {
		res.Err = "no matching peer"
		return res, fmt.Errorf("ping %v: no peer has that address", ip)
	}
	// The DNS base name, as upstream's ping results (the CLI prints it).
	res.NodeName, _, _ = strings.Cut(peer.Name, ".")
	if typ == engine.PingTSMP || typ == engine.PingICMP {
		return e.pingInTunnel(ctx, nm.Addresses(), typ, res)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	r, err := e.magic.Ping(ctx, peer.Key)
	if err != nil {
		res.Err = err.Error()
		return res, err
	}
	res.Latency = r.Latency
	if r.Endpoint.IsValid() {
		res.Endpoint = r.Endpoint.String()
	} else {
		res.DERPRegionID = r.DERPRegion
		if nm.DERPMap != nil && nm.DERPMap.Regions[r.DERPRegion] != nil {
			res.DERPRegionCode = nm.DERPMap.Regions[r.DERPRegion].RegionCode
		}
	}
	return res, nil
}

// PeerStatus implements engine.Engine.
func (e *Engine) PeerStatus() []engine.PeerStatus {
	e.mu.Lock()
	nm := e.nm
	e.mu.Unlock()
	if nm == nil {
		return nil
	}
	wg := e.wgStats()
	var out []engine.PeerStatus
	for _, p := range nm.Peers {
		if p == nil {
			continue
		}
		direct, region, active := e.magic.PeerPath(p.Key)
		ps := engine.PeerStatus{Key: p.Key, Active: active}
		if direct.IsValid() {
			ps.CurAddr = direct.String()
		} else if region != 0 && nm.DERPMap != nil && nm.DERPMap.Regions[region] != nil {
			ps.Relay = nm.DERPMap.Regions[region].RegionCode
		}
		if s, ok := wg[p.Key]; ok {
			ps.RxBytes, ps.TxBytes, ps.LastHandshake = s.rx, s.tx, s.hs
		}
		out = append(out, ps)
	}
	return out
}

type wgPeerStats struct {
	rx, tx int64
	hs     time.Time
}

// wgStats parses wireguard-go's UAPI dump.
func (e *Engine) wgStats() map[key.NodePublic]wgPeerStats {
	s, err := e.dev.IpcGet()
	if err != nil {
		return nil
	}
	out := map[key.NodePublic]wgPeerStats{}
	var cur key.NodePublic
	var st wgPeerStats
	var sec, nsec int64
	flush := func() {
		if !cur.IsZero() {
			if sec != 0 || nsec != 0 {
				st.hs = time.Unix(sec, nsec)
			}
			out[cur] = st
		}
	}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "public_key":
			flush()
			st, sec, nsec = wgPeerStats{}, 0, 0
			raw, err := hex.DecodeString(v)
			if err != nil || len(raw) != 32 {
				cur = key.NodePublic{}
				continue
			}
			cur = key.NodePublicFromRaw32([32]byte(raw))
		case "rx_bytes":
			st.rx, _ = strconv.ParseInt(v, 10, 64)
		case "tx_bytes":
			st.tx, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	flush()
	return out
}

// Close implements engine.Engine.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.dev.Close() // closes the bind and the TUN device
	err := e.magic.Close()
	if e.ktun != nil {
		e.ktun.cleanup()
	}
	return err
}

var _ engine.Netchecker = (*Engine)(nil)

// Netcheck implements engine.Netchecker with a fresh STUN round.
func (e *Engine) Netcheck(ctx context.Context) (*engine.NetcheckReport, error) {
	r, err := e.magic.Netcheck(ctx)
	if err != nil {
		return nil, err
	}
	out := &engine.NetcheckReport{
		UDP: r.UDP, IPv4: r.IPv4, IPv6: r.IPv6, PreferredDERP: r.PreferredDERP,
		RegionLatency: r.RegionLatency,
	}
	if r.IPv4 {
		v := r.MappingVariesByDestIP
		out.MappingVariesByDestIP = &v
	}
	if r.GlobalV4.IsValid() {
		out.GlobalV4 = r.GlobalV4.String()
	}
	if r.GlobalV6.IsValid() {
		out.GlobalV6 = r.GlobalV6.String()
	}
	return out, nil
}

var (
	_ engine.Reachability = (*Engine)(nil)
	_ engine.Debugger     = (*Engine)(nil)
)

// Reachable implements engine.Reachability.
func (e *Engine) Reachable() bool { return e.magic.Reachable() }

// SetReachableCallback implements engine.Reachability.
func (e *Engine) SetReachableCallback(fn func(bool)) { e.magic.SetReachableCallback(fn) }

// ReSTUN implements engine.Debugger.
func (e *Engine) ReSTUN() { e.magic.ReSTUN("debug") }

// Rebind implements engine.Debugger.
func (e *Engine) Rebind() { e.magic.Rebind() }
