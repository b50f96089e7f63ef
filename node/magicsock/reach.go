package magicsock

import (
	"time"
)

// Reachable reports whether peers can reach this node: its home DERP
// connection is up, or some peer has a trusted direct path. A DERP map
// without regions counts as reachable (there is nothing to wait for).
func (c *Conn) Reachable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reachableLocked()
}

func (c *Conn) reachableLocked() bool {
	if c.closed || c.privKey.IsZero() {
		return false
	}
	if c.derpMap != nil && len(c.derpMap.Regions) == 0 {
		return true
	}
	if dc := c.derps[c.home]; dc != nil && dc.connected() {
		return true
	}
	now := c.clock.Now()
	for _, ep := range c.peers {
		if ep.best.addr.IsValid() && now.Before(ep.trustUntil) {
			return true
		}
	}
	return false
}

// SetReachableCallback registers fn, called from the notifier goroutine
// whenever Reachable changes (and once right away).
func (c *Conn) SetReachableCallback(fn func(bool)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onReach = fn
	c.reachKnown = false
	c.kickReachLocked()
}

// updateReachable re-evaluates reachability and notifies on a change.
func (c *Conn) updateReachable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.kickReachLocked()
}

func (c *Conn) kickReachLocked() {
	if c.onReach == nil {
		return
	}
	select {
	case c.reachKick <- struct{}{}:
	default:
	}
}

// deliverReach runs in the notifier goroutine.
func (c *Conn) deliverReach() {
	c.mu.Lock()
	fn, r := c.onReach, c.reachableLocked()
	changed := !c.reachKnown || r != c.reachable
	c.reachable, c.reachKnown = r, true
	c.mu.Unlock()
	if fn != nil && changed {
		fn(r)
	}
}

// Rebind closes and re-binds the UDP sockets (same port when it is still
// free), forgets every learned path and reconnects DERP, then re-discovers
// endpoints: what tailscaled does after a link change.
func (c *Conn) Rebind() {
	for _, pc := range []PacketConn{c.pconn4, c.pconn6} {
		if rc, ok := pc.(*rebindConn); ok {
			if la, err := rc.rebind(); err != nil {
				c.log.Warn("magicsock: rebind", "err", err)
			} else {
				c.log.Info("magicsock: rebound UDP socket", "addr", la)
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.log.Info("magicsock: rebind: forgetting paths, reconnecting DERP")
	for _, ep := range c.peers {
		ep.resetPathLocked()
		ep.recvRegion = 0
	}
	clear(c.byAddr)
	for r, dc := range c.derps {
		dc.close()
		delete(c.derps, r)
	}
	c.endpointAt = time.Time{}
	if c.home != 0 && !c.privKey.IsZero() {
		c.derpConnLocked(c.home)
	}
	c.reSTUNLocked("rebind")
	c.kickReachLocked()
}
