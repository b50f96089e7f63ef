package ipnlocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/ipn"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// Status builds `status`; peers are included when withPeers is set.
func (b *Backend) Status(withPeers bool) *ipn.Status {
	var paths map[key.NodePublic]engine.PeerStatus
	if withPeers {
		paths = map[key.NodePublic]engine.PeerStatus{}
		for _, ps := range b.eng.PeerStatus() {
			paths[ps.Key] = ps
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	st := &ipn.Status{
		Version:      b.opts.Version,
		TUN:          b.opts.TUN,
		BackendState: b.state.String(),
		HaveNodeKey:  !b.profile.NodeKey.IsZero(),
		AuthURL:      b.authURL,
		TailscaleIPs: []netip.Addr{},
		Health:       b.healthLocked(),
		User:         map[ctrl.UserID]ctrl.UserProfile{},
	}
	if st.AuthURL != "" && b.state != ipn.NeedsLogin {
		st.AuthURL = ""
	}
	nm := b.nm
	if nm == nil || nm.SelfNode == nil {
		return st
	}
	for _, a := range nm.SelfNode.Addresses {
		st.TailscaleIPs = append(st.TailscaleIPs, a.Addr())
	}
	st.Self = b.peerStatusLocked(nm.SelfNode, engine.PeerStatus{})
	st.Self.Online = b.state == ipn.Running
	st.Self.InNetworkMap, st.Self.InMagicSock, st.Self.InEngine = true, false, false
	st.MagicDNSSuffix = nm.MagicDNSSuffix()
	st.CurrentTailnet = &ipn.TailnetStatus{
		Name:            firstNonEmpty(nm.Domain, b.profile.UserProfile.LoginName),
		MagicDNSSuffix:  st.MagicDNSSuffix,
		MagicDNSEnabled: nm.DNS != nil && nm.DNS.Proxied,
	}
	if nm.DNS != nil {
		st.CertDomains = nm.DNS.CertDomains
		st.ExtraRecords = nm.DNS.ExtraRecords
	}
	maps.Copy(st.User, nm.UserProfiles)
	if !withPeers {
		return st
	}
	st.Peer = map[key.NodePublic]*ipn.PeerStatus{}
	for _, p := range nm.Peers {
		ps := b.peerStatusLocked(p, paths[p.Key])
		ps.InNetworkMap = true
		_, ps.InEngine = paths[p.Key]
		ps.InMagicSock = ps.InEngine
		if ps.ExitNode {
			st.ExitNodeStatus = &ipn.ExitNodeStatus{ID: p.StableID, Online: ps.Online, TailscaleIPs: p.Addresses}
		}
		st.Peer[p.Key] = ps
	}
	return st
}

// peerStatusLocked converts a control node and the engine's path state.
func (b *Backend) peerStatusLocked(n *ctrl.Node, path engine.PeerStatus) *ipn.PeerStatus {
	var hi ctrl.Hostinfo
	if len(n.Hostinfo) > 0 {
		json.Unmarshal(n.Hostinfo, &hi)
	}
	ps := &ipn.PeerStatus{
		ID:             n.StableID,
		NodeID:         n.ID,
		PublicKey:      n.Key,
		HostName:       hi.Hostname,
		DNSName:        n.Name,
		OS:             hi.OS,
		UserID:         n.User,
		TailscaleIPs:   []netip.Addr{},
		AllowedIPs:     n.AllowedIPs,
		Tags:           n.Tags,
		PrimaryRoutes:  n.PrimaryRoutes,
		Addrs:          []string{},
		CurAddr:        path.CurAddr,
		Relay:          path.Relay,
		RxBytes:        path.RxBytes,
		TxBytes:        path.TxBytes,
		Created:        n.Created,
		LastHandshake:  path.LastHandshake,
		Online:         n.Online != nil && *n.Online,
		ExitNode:       n.StableID != "" && n.StableID == b.profile.Prefs.ExitNodeID,
		ExitNodeOption: offersExitNode(n),
		Active:         path.Active,
		CapMap:         n.CapMap,
		SSH_HostKeys:   hi.SSHHostKeys,
		Expired:        n.Expired || (!n.KeyExpiry.IsZero() && !n.KeyExpiry.After(b.opts.Now())),
		Location:       hi.Location,
	}
	if n.Sharer != 0 && n.Sharer != n.User {
		ps.AltSharerUserID = n.Sharer
	}
	if ps.AllowedIPs == nil {
		ps.AllowedIPs = n.Addresses
	}
	for _, a := range n.Addresses {
		ps.TailscaleIPs = append(ps.TailscaleIPs, a.Addr())
	}
	for _, ep := range n.Endpoints {
		ps.Addrs = append(ps.Addrs, ep.String())
	}
	if ps.Relay == "" && n.HomeDERP != 0 && b.nm != nil && b.nm.DERPMap != nil {
		if r := b.nm.DERPMap.Regions[n.HomeDERP]; r != nil {
			ps.Relay = r.RegionCode
		}
	}
	if n.LastSeen != nil && !ps.Online {
		ps.LastSeen = *n.LastSeen
	}
	if !n.KeyExpiry.IsZero() {
		t := n.KeyExpiry
		ps.KeyExpiry = &t
	}
	for c := range n.CapMap {
		ps.Capabilities = append(ps.Capabilities, c)
	}
	slices.Sort(ps.Capabilities)
	return ps
}

func offersExitNode(n *ctrl.Node) bool {
	v4, v6 := false, false
	for _, p := range n.AllowedIPs {
		v4 = v4 || p == netip.MustParsePrefix("0.0.0.0/0")
		v6 = v6 || p == netip.MustParsePrefix("::/0")
	}
	return v4 && v6
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// healthLocked lists the current problems, including every preference
// whose feature weftd does not implement yet: a setting is never ignored
// silently.
func (b *Backend) healthLocked() []string {
	h := []string{}
	if b.lastErr != "" && b.state != ipn.Running {
		h = append(h, "control: "+b.lastErr)
	}
	h = append(h, b.ctrlHealth...)
	h = append(h, b.opts.Health...)
	if b.keyExpiredLocked() {
		h = append(h, "this node's key has expired; log in again with: weft up (or weft login)")
	}
	p := b.profile.Prefs
	notYet := func(flag, what string) {
		h = append(h, fmt.Sprintf("%s is set but %s is not yet supported by weftd", flag, what))
	}
	if p.CorpDNS && b.nm != nil && b.nm.DNS != nil {
		notYet("--accept-dns", "applying DNS configuration from control")
	}
	if p.RunSSH {
		notYet("--ssh", "the SSH server")
	}
	if p.ExitNodeAllowLANAccess {
		notYet("--exit-node-allow-lan-access", "exit-node LAN access")
	}
	if p.NetfilterMode != ipn.NetfilterOn {
		notYet("--netfilter-mode="+p.NetfilterMode.String(), "netfilter management")
	}
	if p.NoSNAT {
		notYet("--snat-subnet-routes=false", "subnet routing")
	}
	if p.PostureChecking {
		notYet("--report-posture", "posture reporting")
	}
	if _, fake := b.eng.(*engine.Fake); fake {
		var inert []string
		if p.RouteAll {
			inert = append(inert, "--accept-routes")
		}
		if len(p.AdvertiseRoutes) > 0 {
			inert = append(inert, "--advertise-routes/--advertise-exit-node")
		}
		if p.ExitNodeID != "" || p.ExitNodeIP.IsValid() {
			inert = append(inert, "--exit-node")
		}
		if p.ShieldsUp {
			inert = append(inert, "--shields-up")
		}
		if len(inert) > 0 {
			h = append(h, strings.Join(inert, ", ")+": stored and sent to control, but not yet supported here: this weftd runs without a data plane")
		}
	}
	return h
}

// WhoIs finds the node owning addr (a tailnet IP of a peer or of self).
func (b *Backend) WhoIs(addr netip.Addr) (*ipn.WhoIsResponse, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	nm := b.nm
	if nm == nil {
		return nil, false
	}
	n := nm.PeerByIP(addr)
	if n == nil && nm.SelfNode != nil {
		for _, a := range nm.SelfNode.Addresses {
			if a.Contains(addr) {
				n = nm.SelfNode
			}
		}
	}
	if n == nil {
		return nil, false
	}
	res := &ipn.WhoIsResponse{Node: n, CapMap: map[string][]json.RawMessage{}}
	if up, ok := nm.UserProfiles[n.User]; ok {
		res.UserProfile = &up
	} else {
		res.UserProfile = &ctrl.UserProfile{ID: n.User}
	}
	return res, true
}

// Ping pings ip through the engine.
func (b *Backend) Ping(ctx context.Context, ip netip.Addr, typ engine.PingType) (*ipn.PingResult, error) {
	b.mu.Lock()
	running := b.state == ipn.Running
	var name string
	if b.nm != nil {
		if p := b.nm.PeerByIP(ip); p != nil {
			name, _, _ = strings.Cut(p.Name, ".")
		}
	}
	b.mu.Unlock()
	if !running {
		return nil, ErrNotRunning
	}
	r, err := b.eng.Ping(ctx, ip, typ)
	res := &ipn.PingResult{
		IP: ip.String(), NodeIP: ip.String(), NodeName: firstNonEmpty(r.NodeName, name),
		Err: r.Err, LatencySeconds: r.Latency.Seconds(), Endpoint: r.Endpoint,
		DERPRegionID: r.DERPRegionID, DERPRegionCode: r.DERPRegionCode, PeerAPIPort: r.PeerAPIPort,
	}
	if err != nil {
		res.Err = err.Error()
	}
	return res, err
}

// Netcheck asks the engine to measure the network.
func (b *Backend) Netcheck(ctx context.Context) (*ipn.NetcheckReport, error) {
	nc, ok := b.eng.(engine.Netchecker)
	if !ok {
		return nil, errors.New("netcheck: the data plane in use cannot measure the network")
	}
	r, err := nc.Netcheck(ctx)
	if err != nil {
		return nil, err
	}
	return &ipn.NetcheckReport{
		UDP: r.UDP, IPv4: r.IPv4, IPv6: r.IPv6, PreferredDERP: r.PreferredDERP,
		RegionLatency: r.RegionLatency, GlobalV4: r.GlobalV4, GlobalV6: r.GlobalV6,
		MappingVariesByDestIP: r.MappingVariesByDestIP,
	}, nil
}

// DebugAction runs `weft debug restun` or `weft debug rebind` on the
// engine.
func (b *Backend) DebugAction(action string) error {
	d, ok := b.eng.(engine.Debugger)
	if !ok {
		return fmt.Errorf("debug %s: the data plane in use does not support it (weftd runs without a data plane)", action)
	}
	switch action {
	case "restun":
		d.ReSTUN()
	case "rebind":
		d.Rebind()
	default:
		return fmt.Errorf("unknown debug action %q; want restun or rebind", action)
	}
	return nil
}
