package magicsock

import (
	"context"
	"errors"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"weft.dev/weft/node/engine"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/stun"
)

// netcheck constants (derp-disco.md §2.4, §2.5).
const (
	stunTries          = 3
	stunTrySpacing     = 100 * time.Millisecond
	reportTimeout      = 3 * time.Second
	reportHistoryKeep  = 5*time.Minute + 5*time.Second
	homeStickyAbs      = 10 * time.Millisecond
	periodicSTUNMin    = 20 * time.Second
	periodicSTUNJitter = 6 * time.Second
)

// netcheckState is the STUN prober's state (guarded by Conn.mu).
type netcheckState struct {
	running  bool
	again    bool
	inflight map[stun.TxID]stunProbe
	cur      *report
	history  []*report
	gen      int // rounds started
	waiters  []reportWaiter
}

// reportWaiter wants the first report of round gen or later.
type reportWaiter struct {
	gen int
	ch  chan *report
}

type stunProbe struct {
	region int
	sent   time.Time
}

// report is one netcheck round.
type report struct {
	gen      int
	at       time.Time
	latency  map[int]time.Duration // best per region, any family
	v4lat    map[int]time.Duration
	v6lat    map[int]time.Duration
	global4  netip.AddrPort
	global6  netip.AddrPort
	varies   bool // two IPv4 servers saw different mappings
	probed   map[int]bool
	progress chan struct{} // signalled on every reply
}

// ReSTUN starts a netcheck round now (or right after the running one).
func (c *Conn) ReSTUN(why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reSTUNLocked(why)
}

func (c *Conn) reSTUNLocked(why string) {
	if c.closed || c.derpMap == nil {
		return
	}
	if c.nc.running {
		c.nc.again = true
		return
	}
	c.nc.running = true
	c.log.Debug("magicsock: netcheck", "why", why)
	c.goLocked(c.runNetcheck)
}

func (c *Conn) runNetcheck() {
	for {
		rep := &report{
			latency: map[int]time.Duration{}, v4lat: map[int]time.Duration{}, v6lat: map[int]time.Duration{},
			probed: map[int]bool{}, progress: make(chan struct{}, 1),
		}
		c.mu.Lock()
		m := c.derpMap
		c.nc.gen++
		rep.gen = c.nc.gen
		c.nc.cur = rep
		c.nc.inflight = map[stun.TxID]stunProbe{}
		c.mu.Unlock()
		if !c.opts.DisableSTUN && m != nil {
			c.probe(m, rep)
		}
		c.mu.Lock()
		c.nc.cur, c.nc.inflight = nil, nil
		rep.at = c.clock.Now()
		out := c.finishReportLocked(rep)
		again := c.nc.again && !c.closed
		c.nc.again = false
		c.nc.running = again
		c.mu.Unlock()
		c.sendDisco(out)
		if !again {
			return
		}
	}
}

// probe sends STUN requests to every measurable region (3 tries, rotating
// through its nodes) and waits for answers or the report timeout.
func (c *Conn) probe(m *ctrl.DERPMap, rep *report) {
	ctx, cancel := context.WithTimeout(c.ctx, reportTimeout)
	defer cancel()
	var req [stun.RequestLen]byte
	regions := m.RegionIDs()
	for try := range stunTries {
		for _, id := range regions {
			r := m.Regions[id]
			if r == nil || r.NoMeasureNoHome || len(r.Nodes) == 0 {
				continue
			}
			c.mu.Lock()
			_, answered := rep.latency[id]
			c.mu.Unlock()
			if answered {
				continue
			}
			n := r.Nodes[try%len(r.Nodes)]
			if n == nil || n.STUNPortOrDefault() == 0 {
				continue
			}
			for _, v6 := range []bool{false, true} {
				pc := c.pconn4
				if v6 {
					pc = c.pconn6
				}
				if pc == nil {
					continue
				}
				ip := stunIP(ctx, n, v6)
				if !ip.IsValid() {
					continue
				}
				tx := stun.NewTxID()
				c.mu.Lock()
				c.nc.inflight[tx] = stunProbe{region: id, sent: c.clock.Now()}
				rep.probed[id] = true
				c.mu.Unlock()
				pc.WriteBatch([][]byte{stun.AppendRequest(req[:0], tx)}, netip.AddrPortFrom(ip, uint16(n.STUNPortOrDefault())))
			}
		}
		if c.waitReport(ctx, rep, stunTrySpacing) {
			return
		}
	}
	c.waitReport(ctx, rep, reportTimeout)
}

// waitReport waits up to d for every probed region to answer; it reports
// whether they all have.
func (c *Conn) waitReport(ctx context.Context, rep *report, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		c.mu.Lock()
		done := len(rep.probed) > 0 && len(rep.latency) >= len(rep.probed)
		c.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-rep.progress:
		case <-t.C:
			return false
		case <-ctx.Done():
			return true
		}
	}
}

func stunIP(ctx context.Context, n *ctrl.DERPNode, v6 bool) netip.Addr {
	pick := func(s string) netip.Addr {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Is6() != v6 {
			return netip.Addr{}
		}
		return ip.Unmap()
	}
	if n.STUNTestIP != "" {
		return pick(n.STUNTestIP)
	}
	lit := n.IPv4
	if v6 {
		lit = n.IPv6
	}
	switch lit {
	case "none":
		return netip.Addr{}
	case "":
		network := "ip4"
		if v6 {
			network = "ip6"
		}
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		ips, err := net.DefaultResolver.LookupNetIP(lctx, network, n.HostName)
		if err != nil || len(ips) == 0 {
			return netip.Addr{}
		}
		return ips[0].Unmap()
	}
	return pick(lit)
}

// handleSTUN matches a STUN response to an in-flight probe.
func (c *Conn) handleSTUN(pkt []byte, v6 bool) {
	tx, mapped, err := stun.ParseResponse(pkt)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.nc.inflight[tx]
	rep := c.nc.cur
	if !ok || rep == nil {
		return
	}
	delete(c.nc.inflight, tx)
	lat := c.clock.Now().Sub(p.sent)
	setMin := func(m map[int]time.Duration) {
		if old, ok := m[p.region]; !ok || lat < old {
			m[p.region] = lat
		}
	}
	setMin(rep.latency)
	if v6 {
		setMin(rep.v6lat)
		rep.global6 = mapped
	} else {
		setMin(rep.v4lat)
		if rep.global4.IsValid() && rep.global4 != mapped {
			rep.varies = true
		}
		rep.global4 = mapped
	}
	select {
	case rep.progress <- struct{}{}:
	default:
	}
}

// finishReportLocked records rep, picks the home region, recomputes the
// endpoints and notifies. It returns CallMeMaybes that waited for it.
func (c *Conn) finishReportLocked(rep *report) []discoSend {
	if c.closed {
		return nil
	}
	now := rep.at
	c.nc.history = append(c.nc.history, rep)
	c.nc.history = slices.DeleteFunc(c.nc.history, func(r *report) bool { return now.Sub(r.at) > reportHistoryKeep })
	c.setHomeLocked(c.pickHomeLocked(rep))

	var eps []engine.Endpoint
	add := func(ap netip.AddrPort, t ctrl.EndpointType) {
		if !ap.IsValid() || slices.ContainsFunc(eps, func(e engine.Endpoint) bool { return e.Addr == ap }) {
			return
		}
		eps = append(eps, engine.Endpoint{Addr: ap, Type: t})
	}
	add(rep.global4, ctrl.EndpointSTUN)
	add(rep.global6, ctrl.EndpointSTUN)
	if rep.varies && rep.global4.IsValid() && c.pconn4 != nil {
		add(netip.AddrPortFrom(rep.global4.Addr(), c.pconn4.LocalAddrPort().Port()), ctrl.EndpointSTUN4LocalPort)
	}
	if addrs, err := c.opts.Net.LocalAddrs(); err == nil {
		for _, ip := range addrs {
			if c.isTunnelAddrLocked(ip) {
				continue
			}
			switch {
			case ip.Is4() && c.pconn4 != nil:
				add(netip.AddrPortFrom(ip, c.pconn4.LocalAddrPort().Port()), ctrl.EndpointLocal)
			case ip.Is6() && c.pconn6 != nil:
				add(netip.AddrPortFrom(ip, c.pconn6.LocalAddrPort().Port()), ctrl.EndpointLocal)
			}
		}
	}
	t, f := true, false
	ni := &ctrl.NetInfo{PreferredDERP: c.home, DERPLatency: map[string]float64{}, WorkingUDP: &f, WorkingIPv6: &f, OSHasIPv6: &f}
	if len(rep.latency) > 0 {
		ni.WorkingUDP = &t
	}
	if rep.global6.IsValid() {
		ni.WorkingIPv6 = &t
	}
	if c.pconn6 != nil {
		ni.OSHasIPv6 = &t
	}
	if rep.varies {
		ni.MappingVariesByDestIP = &t
	} else if rep.global4.IsValid() {
		ni.MappingVariesByDestIP = &f
	}
	for r, d := range rep.v4lat {
		ni.DERPLatency[strconv.Itoa(r)+"-v4"] = d.Seconds()
	}
	for r, d := range rep.v6lat {
		ni.DERPLatency[strconv.Itoa(r)+"-v6"] = d.Seconds()
	}
	changed := !slices.Equal(eps, c.endpoints) || c.netInfo == nil || c.netInfo.PreferredDERP != ni.PreferredDERP ||
		*c.netInfo.WorkingUDP != *ni.WorkingUDP
	c.endpoints, c.netInfo, c.endpointAt = eps, ni, now
	if changed {
		c.log.Info("magicsock: local state", "endpoints", eps, "home", c.home)
		c.notifyLocalLocked()
	}
	c.nc.waiters = slices.DeleteFunc(c.nc.waiters, func(w reportWaiter) bool {
		if w.gen > rep.gen {
			return false
		}
		w.ch <- rep
		return true
	})
	var out []discoSend
	for ep := range c.pendingCMM {
		if c.peers[ep.nodeKey] == ep && ep.homeRegion != 0 {
			out = append(out, c.callMeMaybeLocked(ep))
		}
	}
	clear(c.pendingCMM)
	if c.stunT != nil {
		c.stunT.Stop()
	}
	c.stunT = c.clock.AfterFunc(periodicSTUNMin+rand.N(periodicSTUNJitter), c.periodicSTUN)
	return out
}

// periodicSTUN re-STUNs while any session is active, keeping NAT mappings
// towards the STUN servers alive (20–26 s upstream).
func (c *Conn) periodicSTUN() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stunT = nil
	now := c.clock.Now()
	active := false
	for _, ep := range c.peers {
		if now.Sub(ep.lastSend) < sessionActiveTimeout {
			active = true
			break
		}
	}
	if active || len(c.endpoints) == 0 {
		c.reSTUNLocked("periodic")
	} else if !c.closed {
		c.stunT = c.clock.AfterFunc(periodicSTUNMin+rand.N(periodicSTUNJitter), c.periodicSTUN)
	}
}

// pickHomeLocked chooses the home region (addReportHistoryAndSetPreferredDERP
// upstream): lowest scaled best-in-history latency, sticky unless clearly
// better, the old home when nothing answered, else a deterministic pick.
func (c *Conn) pickHomeLocked(rep *report) int {
	m := c.derpMap
	if m == nil {
		return 0
	}
	score := func(r int) float64 {
		if m.HomeParams != nil {
			if s, ok := m.HomeParams.RegionScore[r]; ok && s > 0 {
				return s
			}
		}
		return 1
	}
	best := map[int]time.Duration{}
	for _, h := range c.nc.history {
		for r, d := range h.latency {
			if old, ok := best[r]; !ok || d < old {
				best[r] = d
			}
		}
	}
	scaled := func(r int) time.Duration { return time.Duration(float64(best[r]) * score(r)) }
	cand := 0
	for r := range rep.latency {
		reg := m.Regions[r]
		if reg == nil || reg.NoMeasureNoHome {
			continue
		}
		if cand == 0 || scaled(r) < scaled(cand) || (scaled(r) == scaled(cand) && r < cand) {
			cand = r
		}
	}
	old := c.home
	if old != 0 && m.Regions[old] != nil && cand != 0 && cand != old {
		if _, ok := rep.latency[old]; ok {
			so, sc := scaled(old), scaled(cand)
			if so-sc < homeStickyAbs || sc > so*2/3 {
				return old
			}
		}
	}
	if cand != 0 {
		return cand
	}
	if old != 0 && m.Regions[old] != nil {
		return old
	}
	var ids []int
	for _, id := range m.RegionIDs() {
		if r := m.Regions[id]; r != nil && !r.NoMeasureNoHome && len(r.Nodes) > 0 {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0
	}
	h := fnv.New32a()
	k := c.pubKey.Raw32()
	h.Write(k[:])
	return ids[int(h.Sum32()%uint32(len(ids)))]
}

// NetcheckReport is the result of one measurement round.
type NetcheckReport struct {
	UDP, IPv4, IPv6       bool
	MappingVariesByDestIP bool
	PreferredDERP         int
	RegionLatency         map[int]time.Duration
	GlobalV4, GlobalV6    netip.AddrPort
}

// Netcheck runs a fresh STUN round (after any running one) and returns it.
func (c *Conn) Netcheck(ctx context.Context) (*NetcheckReport, error) {
	ch := make(chan *report, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, net.ErrClosed
	}
	if c.derpMap == nil {
		c.mu.Unlock()
		return nil, errors.New("netcheck: no DERP map yet")
	}
	c.nc.waiters = append(c.nc.waiters, reportWaiter{gen: c.nc.gen + 1, ch: ch})
	c.reSTUNLocked("netcheck")
	c.mu.Unlock()
	select {
	case rep := <-ch:
		c.mu.Lock()
		home := c.home
		c.mu.Unlock()
		return &NetcheckReport{
			UDP: len(rep.latency) > 0, IPv4: len(rep.v4lat) > 0, IPv6: len(rep.v6lat) > 0,
			MappingVariesByDestIP: rep.varies, PreferredDERP: home,
			RegionLatency: maps.Clone(rep.latency), GlobalV4: rep.global4, GlobalV6: rep.global6,
		}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.ctx.Done():
		return nil, net.ErrClosed
	}
}
