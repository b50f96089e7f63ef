package controlclient

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"weft.dev/weft/node/netmap"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// mapSession is the state built from one map stream: the first
// non-keepalive frame is a full state, later frames are deltas applied to
// it (control.md §3.3; upstream control/controlclient/map.go). A new
// stream starts a new session.
type mapSession struct {
	nodeKey key.NodePublic
	now     func() time.Time

	gotFirst        bool
	self            *ctrl.Node
	peers           map[ctrl.NodeID]*ctrl.Node
	derpMap         *ctrl.DERPMap
	dns             *ctrl.DNSConfig
	domain          string
	collectServices bool
	filterChunks    map[string][]ctrl.FilterRule
	filterSet       bool // a filter was ever received
	sshPolicy       *ctrl.SSHPolicy
	users           map[ctrl.UserID]ctrl.UserProfile
	health          []string
	lastPopURL      string
}

func newMapSession(nodeKey key.NodePublic, now func() time.Time) *mapSession {
	return &mapSession{
		nodeKey:      nodeKey,
		now:          now,
		peers:        map[ctrl.NodeID]*ctrl.Node{},
		filterChunks: map[string][]ctrl.FilterRule{},
		users:        map[ctrl.UserID]ctrl.UserProfile{},
	}
}

// errNoNode is upstream's "initial MapResponse lacked node".
var errNoNode = errors.New("initial MapResponse lacked node")

// apply applies one frame. It returns a new netmap when the frame changed
// anything a consumer sees, nil for keep-alives and frames that carry only
// ControlTime (headscale sends those).
func (ms *mapSession) apply(r *ctrl.MapResponse) (*netmap.NetworkMap, error) {
	if r.KeepAlive {
		return nil, nil
	}
	if !ms.gotFirst {
		if r.Node == nil {
			return nil, errNoNode
		}
		ms.gotFirst = true
	}
	changed := false

	// Peers: a non-empty Peers replaces the set and excludes the other
	// peer deltas of the frame.
	if len(r.Peers) > 0 {
		clear(ms.peers)
		for _, p := range r.Peers {
			if p != nil {
				ms.peers[p.ID] = normalizePeer(p)
			}
		}
		changed = true
	} else {
		for _, id := range r.PeersRemoved {
			delete(ms.peers, id)
			changed = true
		}
		for _, p := range r.PeersChanged {
			if p != nil {
				ms.peers[p.ID] = normalizePeer(p)
				changed = true
			}
		}
		for id, seen := range r.PeerSeenChange {
			p := ms.peers[id]
			if p == nil {
				continue
			}
			c := *p
			if seen {
				t := ms.now()
				c.LastSeen = &t
			} else {
				c.LastSeen = nil
			}
			ms.peers[id] = &c
			changed = true
		}
		for id, on := range r.OnlineChange {
			p := ms.peers[id]
			if p == nil {
				continue
			}
			c := *p
			c.Online = &on
			ms.peers[id] = &c
			changed = true
		}
		for _, pc := range r.PeersChangedPatch {
			if pc == nil {
				continue
			}
			p := ms.peers[pc.NodeID]
			if p == nil {
				continue // unknown IDs are ignored, as upstream
			}
			ms.peers[pc.NodeID] = patchPeer(p, pc)
			changed = true
		}
	}

	if r.Node != nil {
		ms.self = r.Node
		changed = true
	}
	for _, up := range r.UserProfiles {
		ms.users[up.ID] = up
		changed = true
	}
	if r.DERPMap != nil {
		ms.derpMap = mergeDERPMap(ms.derpMap, r.DERPMap)
		changed = true
	}
	if r.PacketFilters != nil {
		if v, ok := r.PacketFilters["*"]; ok && v == nil {
			clear(ms.filterChunks)
		}
		for name, rules := range r.PacketFilters {
			if name == "*" && rules == nil {
				continue
			}
			if rules == nil {
				delete(ms.filterChunks, name)
			} else {
				ms.filterChunks[name] = rules
			}
		}
		ms.filterSet = true
		changed = true
	}
	if r.PacketFilter != nil {
		ms.filterChunks["base"] = r.PacketFilter
		ms.filterSet = true
		changed = true
	}
	if r.DNSConfig != nil {
		ms.dns = r.DNSConfig
		changed = true
	}
	if r.Domain != "" {
		ms.domain = r.Domain
		changed = true
	}
	if r.CollectServices != nil {
		ms.collectServices = *r.CollectServices
		changed = true
	}
	if r.SSHPolicy != nil {
		ms.sshPolicy = r.SSHPolicy
		changed = true
	}
	if r.Health != nil {
		ms.health = slices.Clone(r.Health)
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return ms.netmap(), nil
}

// popBrowserURL returns a PopBrowserURL not seen before on this stream.
func (ms *mapSession) popBrowserURL(r *ctrl.MapResponse) string {
	if r.PopBrowserURL == "" || r.PopBrowserURL == ms.lastPopURL {
		return ""
	}
	ms.lastPopURL = r.PopBrowserURL
	return r.PopBrowserURL
}

// netmap builds an immutable snapshot of the session.
func (ms *mapSession) netmap() *netmap.NetworkMap {
	nm := &netmap.NetworkMap{
		SelfNode:        ms.self,
		NodeKey:         ms.nodeKey,
		DERPMap:         ms.derpMap,
		DNS:             ms.dns,
		Domain:          ms.domain,
		SSHPolicy:       ms.sshPolicy,
		UserProfiles:    maps.Clone(ms.users),
		CollectServices: ms.collectServices,
	}
	if nm.DERPMap == nil {
		nm.DERPMap = &ctrl.DERPMap{Regions: map[int]*ctrl.DERPRegion{}}
	}
	if ms.self != nil {
		nm.Expiry = ms.self.KeyExpiry
	}
	if nm.Domain == "" && ms.self != nil {
		nm.Domain = domainOfName(ms.self.Name)
	}
	ids := slices.Sorted(maps.Keys(ms.peers))
	nm.Peers = make([]*ctrl.Node, 0, len(ids))
	for _, id := range ids {
		nm.Peers = append(nm.Peers, ms.peers[id])
	}
	if ms.filterSet {
		names := slices.Sorted(maps.Keys(ms.filterChunks))
		nm.PacketFilter = []ctrl.FilterRule{}
		for _, n := range names {
			nm.PacketFilter = append(nm.PacketFilter, ms.filterChunks[n]...)
		}
	}
	return nm
}

// Health returns the control-side health messages of the session.
func (ms *mapSession) Health() []string { return ms.health }

// domainOfName returns the MagicDNS domain: the self name minus its first
// label, without the trailing dot.
func domainOfName(name string) string {
	name = strings.TrimSuffix(name, ".")
	if _, rest, ok := strings.Cut(name, "."); ok {
		return rest
	}
	return ""
}

// normalizePeer converts the pre-capver-111 DERP string to HomeDERP.
func normalizePeer(p *ctrl.Node) *ctrl.Node {
	if p.HomeDERP == 0 && p.DERP != "" {
		if r, err := ctrl.ParseLegacyDERPString(p.DERP); err == nil {
			c := *p
			c.HomeDERP = r
			return &c
		}
	}
	return p
}

// patchPeer returns a copy of p with pc applied (nil / zero = unchanged).
func patchPeer(p *ctrl.Node, pc *ctrl.PeerChange) *ctrl.Node {
	c := *p
	if pc.DERPRegion != 0 {
		c.HomeDERP = pc.DERPRegion
	}
	if pc.Cap != 0 {
		c.Cap = pc.Cap
	}
	if pc.CapMap != nil {
		c.CapMap = pc.CapMap
	}
	if pc.Endpoints != nil {
		c.Endpoints = pc.Endpoints
	}
	if pc.Key != nil {
		c.Key = *pc.Key
	}
	if pc.KeySignature != nil {
		c.KeySignature = pc.KeySignature
	}
	if pc.DiscoKey != nil {
		c.DiscoKey = *pc.DiscoKey
	}
	if pc.Online != nil {
		on := *pc.Online
		c.Online = &on
	}
	if pc.LastSeen != nil {
		t := *pc.LastSeen
		c.LastSeen = &t
	}
	if pc.KeyExpiry != nil {
		c.KeyExpiry = *pc.KeyExpiry
	}
	return &c
}

// mergeDERPMap applies a DERPMap delta: null Regions keeps the old regions
// (and omitDefaultRegions), null HomeParams keeps the old ones, null region
// values are dropped.
func mergeDERPMap(old, m *ctrl.DERPMap) *ctrl.DERPMap {
	out := &ctrl.DERPMap{HomeParams: m.HomeParams, Regions: m.Regions, OmitDefaultRegions: m.OmitDefaultRegions}
	if old != nil {
		if out.Regions == nil {
			out.Regions = old.Regions
			out.OmitDefaultRegions = old.OmitDefaultRegions
		}
		if out.HomeParams == nil {
			out.HomeParams = old.HomeParams
		} else if out.HomeParams.RegionScore == nil && old.HomeParams != nil {
			hp := *out.HomeParams
			hp.RegionScore = old.HomeParams.RegionScore
			out.HomeParams = &hp
		}
	}
	if out.Regions == nil {
		out.Regions = map[int]*ctrl.DERPRegion{}
	}
	if slices.Contains(slices.Collect(maps.Values(out.Regions)), nil) {
		clean := make(map[int]*ctrl.DERPRegion, len(out.Regions))
		for id, r := range out.Regions {
			if r != nil {
				clean[id] = r
			}
		}
		out.Regions = clean
	}
	return out
}
