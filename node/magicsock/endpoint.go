package magicsock

import (
	"encoding/hex"
	"net/netip"
	"sync/atomic"
	"time"

	"weft.dev/weft/internal/clock"
	"weft.dev/weft/wire/disco"
	"weft.dev/weft/wire/key"
)

// Path timers (derp-disco.md §4.6, wgengine/magicsock/endpoint.go upstream).
const (
	heartbeatInterval        = 3 * time.Second
	trustUDPAddrDuration     = 6500 * time.Millisecond
	sessionActiveTimeout     = 45 * time.Second
	discoPingInterval        = 5 * time.Second
	pingTimeoutDuration      = 5 * time.Second
	upgradeUDPDirectInterval = time.Minute
	goodEnoughLatency        = 5 * time.Millisecond
	endpointsFreshEnough     = 27 * time.Second

	// weft's liveness checks, faster than upstream's trust window alone
	// (which takes 3.5–6.5 s to notice a dead path). The heartbeat timer
	// ticks every livenessTick; a trusted path from which nothing has been
	// heard for silenceProbeAfter gets a probe Ping, and while that Ping is
	// unanswered packets also go over DERP (as upstream does whenever the
	// path is unconfirmed). Unanswered after probeGrace, the path loses its
	// trust. An untrusted best path is re-pinged every tick while the
	// session is active, so a path that comes back is used again within
	// about a second. Peers see only extra Pings, which they answer.
	livenessTick      = time.Second
	silenceProbeAfter = 900 * time.Millisecond
	minProbeGrace     = 500 * time.Millisecond
	maxProbeGrace     = 2 * time.Second
	// derpHintSilence: WireGuard from the peer over DERP while we trust a
	// direct path that has been this quiet means the peer no longer hears
	// us directly: probe at once.
	derpHintSilence = 250 * time.Millisecond
	// untrustedRepingInterval spaces the Pings to an untrusted best path
	// that sending traffic triggers: short, so that a path that comes back
	// carries traffic again within a round trip of the next packet (each
	// ping is ~100 bytes; upstream waits for its 3 s heartbeat or the 5 s
	// per-candidate ping spacing).
	untrustedRepingInterval = 100 * time.Millisecond
)

// endpoint is one peer, as wireguard-go sees it: a fixed conn.Endpoint
// whose real path (UDP address and/or DERP region) magicsock picks per send.
// All mutable fields are guarded by Conn.mu.
type endpoint struct {
	c       *Conn
	nodeKey key.NodePublic
	str     string   // hex node key: the wireguard-go endpoint string
	fakeDst [16]byte // unique bytes for wireguard-go's cookie MACs

	// guarded by c.mu:
	discoKey     key.DiscoPublic
	homeRegion   int // peer's home DERP region; 0 unknown
	wgOnly       bool
	candidates   map[netip.AddrPort]*candidate
	best         addrQuality
	trustUntil   time.Time
	lastSend     time.Time // last WireGuard (or CLI ping) send: "active"
	lastFullPing time.Time
	heartbeat    clock.Timer
	recvRegion   int // reverse route: region we last heard the peer on
	lastPongAt   time.Time
	probeAt      time.Time // outstanding silence probe to best; zero: none
	lastBestPing time.Time // last Ping to best (any purpose but discovery)
	ticks        int       // heartbeat ticks since the session started
	// pendingInit is a WireGuard handshake initiation that found no path
	// (the peer joined so recently that the netmap has neither its home
	// region nor an endpoint); it goes out as soon as one is known, rather
	// than after wireguard-go's 5 s retry.
	pendingInit   []byte
	pendingInitAt time.Time

	// lastHeard is when anything (WireGuard or disco) last arrived from
	// the peer over UDP, in clock unix nanos. Atomic: the receive path
	// stores it once per batch without taking Conn.mu.
	lastHeard atomic.Int64
}

// candidate is one UDP address the peer may be reachable at.
type candidate struct {
	fromNetmap  bool
	fromCMM     bool
	lastGotPing time.Time // when the peer last pinged us from here
	lastPing    time.Time // when we last pinged it (discovery)
	lastRxTx    disco.TxID
	latency     time.Duration // last pong latency, 0 unknown
}

// addrQuality is a path and how good it is.
type addrQuality struct {
	addr    netip.AddrPort
	latency time.Duration
}

func newEndpoint(c *Conn, k key.NodePublic) *endpoint {
	raw := k.Raw32()
	ep := &endpoint{c: c, nodeKey: k, str: hex.EncodeToString(raw[:]), candidates: map[netip.AddrPort]*candidate{}}
	ep.fakeDst[0], ep.fakeDst[1] = 0xfd, 0x00 // ULA-looking, never on a wire
	copy(ep.fakeDst[2:], raw[:14])
	return ep
}

// conn.Endpoint. The strings are the node key because wireguard-go only
// shows them; magicsock resolves the real path per packet.
func (ep *endpoint) ClearSrc()           {}
func (ep *endpoint) SrcToString() string { return "" }
func (ep *endpoint) DstToString() string { return ep.str }
func (ep *endpoint) DstToBytes() []byte  { return ep.fakeDst[:] }
func (ep *endpoint) DstIP() netip.Addr   { return netip.Addr{} }
func (ep *endpoint) SrcIP() netip.Addr   { return netip.Addr{} }

func (ep *endpoint) stopLocked() {
	if ep.heartbeat != nil {
		ep.heartbeat.Stop()
		ep.heartbeat = nil
	}
}

// resetPathLocked forgets everything learned about paths (new disco key:
// the peer restarted).
func (ep *endpoint) resetPathLocked() {
	ep.best = addrQuality{}
	ep.trustUntil = time.Time{}
	for a, cd := range ep.candidates {
		if !cd.fromNetmap {
			delete(ep.candidates, a)
		}
		cd.lastPing = time.Time{}
	}
}

func (ep *endpoint) setNetmapEndpointsLocked(addrs []netip.AddrPort) {
	want := make(map[netip.AddrPort]bool, len(addrs))
	for _, a := range addrs {
		if !a.IsValid() || a.Addr().IsUnspecified() {
			continue
		}
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if ep.c.isTunnelAddrLocked(a.Addr()) {
			continue
		}
		want[a] = true
		cd := ep.candidates[a]
		if cd == nil {
			cd = &candidate{}
			ep.candidates[a] = cd
		}
		cd.fromNetmap = true
	}
	for a, cd := range ep.candidates {
		if cd.fromNetmap && !want[a] {
			cd.fromNetmap = false
			if !cd.fromCMM && cd.lastGotPing.IsZero() {
				ep.deleteCandidateLocked(a)
			}
		}
	}
}

func (ep *endpoint) deleteCandidateLocked(a netip.AddrPort) {
	delete(ep.candidates, a)
	if ep.best.addr == a {
		ep.best = addrQuality{}
		ep.trustUntil = time.Time{}
	}
}

// path is where one send goes.
type path struct {
	udp    netip.AddrPort // zero: none
	region int            // DERP region; 0: none
}

// addrForSendLocked picks the path per §4.3 and returns the disco messages
// discovery wants sent (to be sent after unlocking).
func (ep *endpoint) addrForSendLocked(now time.Time) (path, []discoSend) {
	ep.lastSend = now
	ep.startHeartbeatLocked()
	if ep.trustedLocked(now) {
		if ep.probeAt.IsZero() {
			return path{udp: ep.best.addr}, nil
		}
		// Confirming the path: DERP too, meanwhile.
		return path{udp: ep.best.addr, region: ep.homeRegion}, nil
	}
	p := path{udp: ep.best.addr, region: ep.homeRegion}
	if p.region == 0 && !p.udp.IsValid() {
		p.region = ep.recvRegion // reverse route, last resort
	}
	var out []discoSend
	if !ep.wgOnly && !ep.discoKey.IsZero() {
		out = ep.discoverLocked(now, false)
		if p.udp.IsValid() && now.Sub(ep.lastBestPing) >= untrustedRepingInterval {
			// Traffic to a path that went quiet: ask it now, so a path
			// that came back is trusted again within a round trip.
			out = append(out, ep.pingBestLocked(now))
		}
	}
	return p, out
}

// pingBestLocked pings the best path (heartbeat, silence probe or re-check
// of an untrusted path).
func (ep *endpoint) pingBestLocked(now time.Time) discoSend {
	ep.lastBestPing = now
	return ep.c.newPingLocked(ep, path{udp: ep.best.addr}, pingHeartbeat, nil)
}

// discoverLocked pings every candidate not pinged in the last 5 s (all of
// them when force) and, if any ping went out, asks the peer over DERP to
// ping us back (CallMeMaybe).
func (ep *endpoint) discoverLocked(now time.Time, force bool) []discoSend {
	c := ep.c
	var out []discoSend
	for a, cd := range ep.candidates {
		if !force && !cd.lastPing.IsZero() && now.Sub(cd.lastPing) < discoPingInterval {
			continue
		}
		cd.lastPing = now
		out = append(out, c.newPingLocked(ep, path{udp: a}, pingDiscovery, nil))
	}
	ep.lastFullPing = now
	if len(out) > 0 && ep.homeRegion != 0 {
		if c.endpointAt.IsZero() || now.Sub(c.endpointAt) > endpointsFreshEnough {
			// Refresh NAT mappings first; the CallMeMaybe goes out when
			// the STUN round completes (enqueueCallMeMaybe upstream).
			c.pendingCMM[ep] = true
			c.reSTUNLocked("call-me-maybe")
		} else {
			out = append(out, c.callMeMaybeLocked(ep))
		}
	}
	return out
}

func (ep *endpoint) startHeartbeatLocked() {
	if ep.heartbeat == nil && !ep.c.closed {
		ep.ticks = 0
		ep.heartbeat = ep.c.clock.AfterFunc(livenessTick, ep.heartbeatTick)
	}
}

// noteHeard records that something arrived from the peer over UDP.
func (ep *endpoint) noteHeard(now time.Time) { ep.lastHeard.Store(now.UnixNano()) }

// heardSince reports whether anything arrived over UDP at or after t.
func (ep *endpoint) heardSince(t time.Time) bool { return ep.lastHeard.Load() >= t.UnixNano() }

// probeGrace is how long a silence probe may go unanswered.
func (ep *endpoint) probeGrace() time.Duration {
	return min(max(minProbeGrace, 4*ep.best.latency), maxProbeGrace)
}

// trustedLocked reports whether best is a trusted direct path, first
// settling an outstanding silence probe: answered (anything heard since
// it went out) clears it; unanswered past its grace ends the trust.
func (ep *endpoint) trustedLocked(now time.Time) bool {
	if !ep.best.addr.IsValid() || !now.Before(ep.trustUntil) {
		ep.probeAt = time.Time{}
		return false
	}
	if ep.probeAt.IsZero() {
		return true
	}
	if ep.heardSince(ep.probeAt) {
		ep.probeAt = time.Time{}
		return true
	}
	if now.Sub(ep.probeAt) >= ep.probeGrace() {
		ep.c.log.Debug("magicsock: direct path silent", "peer", ep.nodeKey.ShortString(), "addr", ep.best.addr, "probe", now.Sub(ep.probeAt))
		ep.trustUntil = ep.probeAt
		ep.probeAt = time.Time{}
		ep.c.kickReachLocked()
		return false
	}
	return true
}

// probeLocked pings the trusted best path to check it is still alive
// (nothing heard from the peer lately).
func (ep *endpoint) probeLocked(now time.Time) discoSend {
	ep.probeAt = now
	return ep.pingBestLocked(now)
}

// noteDERPRecvLocked is told about WireGuard from the peer over DERP: if
// we trust a direct path the peer seems to have given up on, check it now.
func (ep *endpoint) noteDERPRecvLocked(now time.Time) []discoSend {
	if ep.discoKey.IsZero() || ep.wgOnly || !ep.trustedLocked(now) || !ep.probeAt.IsZero() {
		return nil
	}
	if ep.heardSince(now.Add(-derpHintSilence)) {
		return nil
	}
	return []discoSend{ep.probeLocked(now)}
}

// heartbeatTick runs every second while the session is active: liveness
// probes of a quiet or untrusted best path each tick, and upstream's
// heartbeat (Ping best, discovery when not trusted) every third (§4.6).
func (ep *endpoint) heartbeatTick() {
	c := ep.c
	c.mu.Lock()
	ep.heartbeat = nil
	if c.closed || c.peers[ep.nodeKey] != ep {
		c.mu.Unlock()
		return
	}
	now := c.clock.Now()
	if now.Sub(ep.lastSend) > sessionActiveTimeout {
		// Idle: stop heartbeats and forget addresses learned from pings.
		for a, cd := range ep.candidates {
			if !cd.fromNetmap && !cd.fromCMM && now.Sub(cd.lastGotPing) > sessionActiveTimeout {
				ep.deleteCandidateLocked(a)
			}
		}
		c.mu.Unlock()
		return
	}
	var out []discoSend
	if ep.discoKey.IsZero() || ep.wgOnly {
		c.mu.Unlock()
		return
	}
	ep.ticks++
	full := ep.ticks%int(heartbeatInterval/livenessTick) == 0
	trusted := ep.trustedLocked(now)
	switch {
	case !ep.best.addr.IsValid():
	case trusted && ep.probeAt.IsZero() && !ep.heardSince(now.Add(-silenceProbeAfter)):
		out = append(out, ep.probeLocked(now))
	case !trusted || (full && ep.probeAt.IsZero()):
		// The regular heartbeat, or re-checking a path that went quiet
		// (upstream keeps bestAddr and pings it every 3 s).
		out = append(out, ep.pingBestLocked(now))
	}
	if full && (!trusted ||
		(ep.best.latency > goodEnoughLatency && now.Sub(ep.lastFullPing) >= upgradeUDPDirectInterval)) {
		out = append(out, ep.discoverLocked(now, false)...)
	}
	ep.heartbeat = c.clock.AfterFunc(livenessTick, ep.heartbeatTick)
	c.mu.Unlock()
	c.sendDisco(out)
}

// betterAddr reports whether a is a better path than the incumbent b
// (betterAddr upstream, derp-disco.md §4.5): points for being faster, being
// loopback, link-local, private or IPv6, with hysteresis for the incumbent.
func betterAddr(a, b addrQuality) bool {
	if a.addr == b.addr {
		return false // no path-MTU probing: same address is never better
	}
	if !b.addr.IsValid() {
		return true
	}
	if !a.addr.IsValid() {
		return false
	}
	var aPts, bPts int
	if a.latency > 0 && b.latency > 0 && a.latency != b.latency {
		slower := max(a.latency, b.latency)
		if a.latency < b.latency {
			aPts = int(100 - a.latency*100/slower)
		} else {
			bPts = int(100 - b.latency*100/slower)
		}
	}
	aPts += addrPoints(a.addr.Addr())
	bPts += addrPoints(b.addr.Addr())
	if aPts <= 1 && bPts == 0 {
		return false
	}
	return aPts > bPts
}

func addrPoints(ip netip.Addr) int {
	p := 0
	switch {
	case ip.IsLoopback():
		p += 50
	case ip.IsLinkLocalUnicast():
		p += 30
	case ip.IsPrivate():
		p += 20
	}
	if ip.Is6() {
		p += 10
	}
	return p
}

// WireGuard handshake initiation: message type 1 and its fixed size.
const (
	wgHandshakeInitType = 1
	wgHandshakeInitLen  = 148
	// pendingInitMaxAge is wireguard-go's REKEY_TIMEOUT: an older
	// initiation has been superseded by its retry.
	pendingInitMaxAge = 5 * time.Second
)

func isHandshakeInit(b []byte) bool {
	return len(b) == wgHandshakeInitLen && b[0] == wgHandshakeInitType && b[1] == 0 && b[2] == 0 && b[3] == 0
}

// notePathlessSend keeps the last handshake initiation among bufs, which
// could go nowhere: sent once the peer has a path (SetNetworkMap).
func (c *Conn) notePathlessSend(ep *endpoint, bufs [][]byte) {
	for i := len(bufs) - 1; i >= 0; i-- {
		if isHandshakeInit(bufs[i]) {
			c.mu.Lock()
			ep.pendingInit = append(ep.pendingInit[:0], bufs[i]...)
			ep.pendingInitAt = c.clock.Now()
			c.mu.Unlock()
			return
		}
	}
}

// sendPendingInitLocked sends the pending handshake initiation (after
// unlocking), if one is fresh and the peer now has a path (a home region,
// or a direct path discovery found through netmap endpoints alone), and
// forgets it.
func (ep *endpoint) sendPendingInitLocked(now time.Time) {
	if ep.pendingInit == nil {
		return
	}
	if now.Sub(ep.pendingInitAt) >= pendingInitMaxAge {
		ep.pendingInit = nil
		return
	}
	if ep.homeRegion == 0 && !ep.best.addr.IsValid() {
		return
	}
	init := ep.pendingInit
	ep.pendingInit = nil
	ep.c.goLocked(func() { ep.c.sendToPeer(ep, [][]byte{init}) })
}
