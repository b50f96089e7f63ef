package magicsock

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/disco"
	"weft.dev/weft/wire/key"
)

type pingPurpose int

const (
	pingDiscovery pingPurpose = iota
	pingHeartbeat
	pingCLI
)

// sentPing is a Ping awaiting its Pong (guarded by Conn.mu).
type sentPing struct {
	ep      *endpoint
	to      path
	at      time.Time
	purpose pingPurpose
	timer   interface{ Stop() bool }
	cb      func(PingResult) // CLI pings only
}

// discoSend is one disco message to send once Conn.mu is released.
type discoSend struct {
	to     path // exactly one of udp / region
	dstKey key.NodePublic
	shared disco.SharedKey
	msg    disco.Message
}

// derpMagicIP is the fake address meaning "via DERP" (tailcfg.DerpMagicIP).
var derpMagicIP = netip.MustParseAddr(ctrl.LegacyDERPMagicIP)

// PingResult is the answer to Conn.Ping.
type PingResult struct {
	Latency time.Duration
	// Endpoint is the direct address that answered; zero if via DERP.
	Endpoint netip.AddrPort
	// DERPRegion is the region that carried the Pong when not direct.
	DERPRegion int
}

func (c *Conn) newPingLocked(ep *endpoint, to path, purpose pingPurpose, cb func(PingResult)) discoSend {
	tx := disco.NewTxID()
	sp := &sentPing{ep: ep, to: to, at: c.clock.Now(), purpose: purpose, cb: cb}
	sp.timer = c.clock.AfterFunc(pingTimeoutDuration, func() { c.pingTimeout(tx) })
	c.sentPings[tx] = sp
	ds := discoSend{to: to, dstKey: ep.nodeKey, msg: &disco.Ping{TxID: tx, NodeKey: c.pubKey}}
	if dp := c.byDisco[ep.discoKey]; dp != nil {
		ds.shared = dp.shared
	}
	return ds
}

func (c *Conn) callMeMaybeLocked(ep *endpoint) discoSend {
	m := &disco.CallMeMaybe{MyNumber: make([]netip.AddrPort, 0, len(c.endpoints))}
	for _, e := range c.endpoints {
		m.MyNumber = append(m.MyNumber, e.Addr)
	}
	ds := discoSend{to: path{region: ep.homeRegion}, dstKey: ep.nodeKey, msg: m}
	if dp := c.byDisco[ep.discoKey]; dp != nil {
		ds.shared = dp.shared
	}
	return ds
}

func (c *Conn) pingTimeout(tx disco.TxID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sp := c.sentPings[tx]
	if sp == nil {
		return
	}
	delete(c.sentPings, tx)
	// Like upstream (discoPingTimeout), a lost Ping does not clear bestAddr:
	// the path stays the one re-pinged while untrusted, and any other
	// candidate that answers replaces it (handlePong).
	if sp.to.udp.IsValid() && sp.ep.best.addr == sp.to.udp {
		c.log.Debug("magicsock: direct path ping timed out", "peer", sp.ep.nodeKey.ShortString(), "addr", sp.to.udp)
	}
}

// sendDisco seals and sends msgs (never under Conn.mu).
func (c *Conn) sendDisco(msgs []discoSend) {
	var buf [256]byte
	for i := range msgs {
		m := &msgs[i]
		pkt, err := disco.Seal(buf[:0], c.discoPub, &m.shared, m.msg, nil)
		if err != nil {
			continue
		}
		switch {
		case m.to.udp.IsValid():
			err = c.sendUDP(m.to.udp, [][]byte{pkt})
		case m.to.region != 0:
			if !c.sendDERP(m.to.region, m.dstKey, pkt) {
				err = errors.New("DERP queue full or region unknown")
			}
		}
		c.log.Debug("magicsock: disco send", "type", discoName(m.msg), "peer", m.dstKey.ShortString(), "udp", m.to.udp, "derp", m.to.region, "err", err)
	}
}

func (c *Conn) sendUDP(dst netip.AddrPort, bufs [][]byte) error {
	pc := c.pconn4
	if dst.Addr().Is6() {
		pc = c.pconn6
	}
	if pc == nil {
		return fmt.Errorf("magicsock: no socket for %v", dst)
	}
	return pc.WriteBatch(bufs, dst)
}

// handleDisco processes one disco packet from a UDP source or, when
// derpSrc is set, relayed by DERP region.
func (c *Conn) handleDisco(pkt []byte, src netip.AddrPort, region int, derpSrc key.NodePublic) {
	sender, err := disco.Sender(pkt)
	if err != nil {
		return
	}
	viaDERP := region != 0
	c.mu.Lock()
	dp := c.byDisco[sender]
	var sk disco.SharedKey
	if dp != nil {
		sk = dp.shared
	}
	c.mu.Unlock()
	if dp == nil {
		c.stats.recvDiscoBadPeer.Add(1) // unknown disco key: drop silently (§3.4)
		return
	}
	var scratch [128]byte
	msg, err := disco.Open(pkt, &sk, scratch[:])
	if err != nil {
		c.stats.recvDiscoBadBox.Add(1)
		return
	}
	if viaDERP {
		src = netip.AddrPortFrom(derpMagicIP, uint16(region))
	}
	c.log.Debug("magicsock: disco recv", "type", discoName(msg), "from", sender.ShortString(), "src", src)
	switch m := msg.(type) {
	case *disco.Ping:
		c.handlePing(m, sender, sk, src, region, derpSrc)
	case *disco.Pong:
		c.handlePong(m, sender, src, viaDERP)
	case *disco.CallMeMaybe:
		if viaDERP {
			c.handleCallMeMaybe(m, sender, derpSrc)
		}
	}
}

func (c *Conn) handlePing(m *disco.Ping, sender key.DiscoPublic, sk disco.SharedKey, src netip.AddrPort, region int, derpSrc key.NodePublic) {
	c.mu.Lock()
	dp := c.byDisco[sender]
	if dp == nil || c.closed {
		c.mu.Unlock()
		return
	}
	reply := discoSend{shared: sk, msg: &disco.Pong{TxID: m.TxID, Src: src}}
	if region != 0 {
		ep := c.peers[derpSrc]
		if ep == nil || ep.discoKey != sender {
			c.mu.Unlock()
			return
		}
		reply.to, reply.dstKey = path{region: region}, derpSrc
		c.mu.Unlock()
		c.sendDisco([]discoSend{reply})
		return
	}
	now := c.clock.Now()
	// Which node sent it: the NodeKey when it matches the disco key,
	// else the only node with that disco key.
	var owner *endpoint
	if ep := c.peers[m.NodeKey]; ep != nil && ep.discoKey == sender {
		owner = ep
	} else if len(dp.eps) == 1 {
		owner = dp.eps[0]
	}
	dup := false
	for _, ep := range dp.eps {
		cd := ep.candidates[src]
		if cd == nil {
			cd = &candidate{}
			ep.candidates[src] = cd
		}
		if cd.lastRxTx == m.TxID {
			dup = true
		}
		cd.lastRxTx = m.TxID
		cd.lastGotPing = now
	}
	out := []discoSend{reply}
	out[0].to = path{udp: src}
	if owner != nil {
		c.byAddr[src] = owner
		owner.noteHeard(now)
		// The peer reaches us from src. If we have no trusted path, ping
		// it back now rather than at the next discovery round: the
		// peer's Ping just opened its NAT for us (weft; upstream waits).
		if !dup && !owner.trustedLocked(now) && now.Sub(owner.candidates[src].lastPing) >= livenessTick {
			owner.candidates[src].lastPing = now
			out = append(out, c.newPingLocked(owner, path{udp: src}, pingDiscovery, nil))
		}
	}
	c.mu.Unlock()
	if dup {
		return
	}
	c.sendDisco(out)
}

func (c *Conn) handlePong(m *disco.Pong, sender key.DiscoPublic, src netip.AddrPort, viaDERP bool) {
	c.mu.Lock()
	sp := c.sentPings[m.TxID]
	if sp == nil || sp.ep.discoKey != sender {
		c.mu.Unlock()
		return
	}
	delete(c.sentPings, m.TxID)
	sp.timer.Stop()
	ep := sp.ep
	now := c.clock.Now()
	lat := now.Sub(sp.at)
	res := PingResult{Latency: lat}
	if a := sp.to.udp; a.IsValid() && !viaDERP {
		res.Endpoint = a
		c.byAddr[a] = ep
		if cd := ep.candidates[a]; cd != nil {
			cd.latency = lat
		}
		cand := addrQuality{addr: a, latency: lat}
		if betterAddr(cand, ep.best) || now.After(ep.trustUntil) {
			if ep.best.addr != a {
				c.log.Debug("magicsock: best path", "peer", ep.nodeKey.ShortString(), "addr", a, "latency", lat)
			}
			ep.best = cand
		}
		if ep.best.addr == a {
			ep.best.latency = lat
			ep.trustUntil = now.Add(trustUDPAddrDuration)
			c.kickReachLocked()
			ep.sendPendingInitLocked(now)
		}
		ep.lastPongAt = now
		ep.noteHeard(now)
	} else {
		res.DERPRegion = sp.to.region
	}
	cb := sp.cb
	c.mu.Unlock()
	if cb != nil {
		cb(res)
	}
}

func (c *Conn) handleCallMeMaybe(m *disco.CallMeMaybe, sender key.DiscoPublic, derpSrc key.NodePublic) {
	c.mu.Lock()
	ep := c.peers[derpSrc]
	if ep == nil || ep.discoKey != sender || c.closed {
		c.mu.Unlock()
		return
	}
	now := c.clock.Now()
	want := map[netip.AddrPort]bool{}
	for _, a := range m.MyNumber {
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		if !a.IsValid() || a.Addr().IsUnspecified() || (a.Addr().Is6() && a.Addr().IsLinkLocalUnicast()) || c.isTunnelAddrLocked(a.Addr()) {
			continue
		}
		want[a] = true
		cd := ep.candidates[a]
		if cd == nil {
			cd = &candidate{}
			ep.candidates[a] = cd
		}
		cd.fromCMM = true
	}
	for a, cd := range ep.candidates {
		if cd.fromCMM && !want[a] {
			cd.fromCMM = false
			if !cd.fromNetmap && now.Sub(cd.lastGotPing) > sessionActiveTimeout {
				ep.deleteCandidateLocked(a)
			}
		}
		cd.lastPing = time.Time{}
	}
	var out []discoSend
	for a := range ep.candidates {
		ep.candidates[a].lastPing = now
		out = append(out, c.newPingLocked(ep, path{udp: a}, pingDiscovery, nil))
	}
	c.mu.Unlock()
	c.sendDisco(out)
}

// Ping sends a disco ping to peer over DERP and every candidate path and
// returns the first answer (tailscale ping's disco mode).
func (c *Conn) Ping(ctx context.Context, peer key.NodePublic) (PingResult, error) {
	done := make(chan PingResult, 1)
	cb := func(r PingResult) {
		select {
		case done <- r:
		default:
		}
	}
	c.mu.Lock()
	ep := c.peers[peer]
	switch {
	case c.closed:
		c.mu.Unlock()
		return PingResult{}, errors.New("magicsock: closed")
	case ep == nil:
		c.mu.Unlock()
		return PingResult{}, fmt.Errorf("ping %s: not a peer", peer.ShortString())
	case ep.discoKey.IsZero():
		c.mu.Unlock()
		return PingResult{}, fmt.Errorf("ping %s: peer has no disco key", peer.ShortString())
	}
	now := c.clock.Now()
	ep.lastSend = now // a CLI ping makes the session active, as upstream
	ep.startHeartbeatLocked()
	var out []discoSend
	if r := ep.homeRegion; r != 0 {
		out = append(out, c.newPingLocked(ep, path{region: r}, pingCLI, cb))
	} else if r := ep.recvRegion; r != 0 {
		out = append(out, c.newPingLocked(ep, path{region: r}, pingCLI, cb))
	}
	for a := range ep.candidates {
		out = append(out, c.newPingLocked(ep, path{udp: a}, pingCLI, cb))
	}
	c.mu.Unlock()
	if len(out) == 0 {
		return PingResult{}, fmt.Errorf("ping %s: no UDP or DERP path", peer.ShortString())
	}
	c.sendDisco(out)
	select {
	case r := <-done:
		return r, nil
	case <-ctx.Done():
		return PingResult{}, ctx.Err()
	case <-c.ctx.Done():
		return PingResult{}, errors.New("magicsock: closed")
	}
}

// PeerPath reports the current path to peer: the trusted direct address (or
// zero) and the DERP region in use when not direct.
func (c *Conn) PeerPath(peer key.NodePublic) (direct netip.AddrPort, region int, active bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ep := c.peers[peer]
	if ep == nil {
		return netip.AddrPort{}, 0, false
	}
	now := c.clock.Now()
	active = now.Sub(ep.lastSend) < sessionActiveTimeout
	if ep.trustedLocked(now) {
		return ep.best.addr, 0, active
	}
	region = ep.homeRegion
	if region == 0 {
		region = ep.recvRegion
	}
	return netip.AddrPort{}, region, active
}

// discoName names a disco message for debug logs.
func discoName(m disco.Message) string {
	switch m.(type) {
	case *disco.Ping:
		return "ping"
	case *disco.Pong:
		return "pong"
	case *disco.CallMeMaybe:
		return "call-me-maybe"
	}
	return fmt.Sprintf("%T", m)
}
