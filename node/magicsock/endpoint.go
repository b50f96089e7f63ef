package magicsock

import (
	"encoding/hex"
	"net/netip"
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
	if ep.best.addr.IsValid() && now.Before(ep.trustUntil) {
		return path{udp: ep.best.addr}, nil
	}
	p := path{udp: ep.best.addr, region: ep.homeRegion}
	if p.region == 0 && !p.udp.IsValid() {
		p.region = ep.recvRegion // reverse route, last resort
	}
	var out []discoSend
	if !ep.wgOnly && !ep.discoKey.IsZero() {
		out = ep.discoverLocked(now, false)
	}
	return p, out
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
		ep.heartbeat = ep.c.clock.AfterFunc(heartbeatInterval, ep.heartbeatTick)
	}
}

// heartbeatTick runs every 3 s while the session is active (§4.6).
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
	if ep.best.addr.IsValid() {
		out = append(out, c.newPingLocked(ep, path{udp: ep.best.addr}, pingHeartbeat, nil))
	}
	if !ep.best.addr.IsValid() || now.After(ep.trustUntil) ||
		(ep.best.latency > goodEnoughLatency && now.Sub(ep.lastFullPing) >= upgradeUDPDirectInterval) {
		out = append(out, ep.discoverLocked(now, false)...)
	}
	ep.heartbeat = c.clock.AfterFunc(heartbeatInterval, ep.heartbeatTick)
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
