package mapper

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"weft.dev/weft/control/state"
	"weft.dev/weft/wire/ctrl"
)

var (
	trueVal  = true
	falseVal = false
)

// Self-node capabilities: what headscale grants by default. Every node is
// an admin of its own view; file sharing and SSH are allowed to be used.
var selfCaps = map[string][]json.RawMessage{
	"https://tailscale.com/cap/is-admin":     nil,
	"https://tailscale.com/cap/file-sharing": nil,
	"https://tailscale.com/cap/ssh":          nil,
	"default-auto-update":                    {json.RawMessage("false")},
}

// fqdn returns the MagicDNS name of n with a trailing dot.
func (b *Batcher) fqdn(n *state.Node) string {
	return n.GivenName + "." + b.cfg.Domain + "."
}

// wireNode converts n to its wire form as a peer sees it.
func (b *Batcher) wireNode(n *state.Node, now time.Time) *ctrl.Node {
	addrs := n.Addresses()
	allowed := append(slices.Clone(addrs), n.ServedRoutes()...)
	w := &ctrl.Node{
		ID:                ctrl.NodeID(n.ID),
		StableID:          ctrl.StableNodeID(strconv.FormatInt(n.ID, 10)),
		Name:              b.fqdn(n),
		User:              ctrl.UserID(n.UserID),
		Key:               n.NodeKey,
		KeyExpiry:         n.Expiry,
		Machine:           n.MachineKey,
		DiscoKey:          n.DiscoKey,
		Addresses:         addrs,
		AllowedIPs:        allowed,
		Endpoints:         n.Endpoints,
		HomeDERP:          n.HomeDERP,
		Hostinfo:          n.Hostinfo,
		Created:           n.CreatedAt.UTC(),
		Cap:               ctrl.CapabilityVersion(n.Cap),
		Tags:              n.Tags,
		PrimaryRoutes:     n.PrimaryRoutes(),
		MachineAuthorized: true,
		Expired:           n.IsExpired(now),
	}
	if n.Online {
		w.Online = &trueVal
	} else {
		w.Online = &falseVal
		if !n.LastSeen.IsZero() {
			ls := n.LastSeen.UTC()
			w.LastSeen = &ls
		}
	}
	if len(w.Hostinfo) == 0 {
		w.Hostinfo = json.RawMessage(`{"Hostname":` + strconv.Quote(n.Hostname) + `}`)
	}
	return w
}

// selfNode converts n to the self form sent in MapResponse.Node.
func (b *Batcher) selfNode(n *state.Node, now time.Time) *ctrl.Node {
	w := b.wireNode(n, now)
	w.Online = &trueVal
	w.LastSeen = nil
	w.CapMap = selfCaps
	return w
}

// patchFor returns the PeersChangedPatch entry carrying n's volatile fields.
func patchFor(n *state.Node) *ctrl.PeerChange {
	p := &ctrl.PeerChange{NodeID: ctrl.NodeID(n.ID), DERPRegion: n.HomeDERP}
	if n.Endpoints != nil {
		p.Endpoints = n.Endpoints
	}
	if !n.DiscoKey.IsZero() {
		dk := n.DiscoKey
		p.DiscoKey = &dk
	}
	k := n.NodeKey
	p.Key = &k
	if !n.Expiry.IsZero() {
		e := n.Expiry.UTC()
		p.KeyExpiry = &e
	}
	online := n.Online
	p.Online = &online
	if !online && !n.LastSeen.IsZero() {
		ls := n.LastSeen.UTC()
		p.LastSeen = &ls
	}
	return p
}

// dnsConfig builds the DNS configuration every node receives.
func (b *Batcher) dnsConfig() *ctrl.DNSConfig {
	c := &ctrl.DNSConfig{Proxied: b.cfg.DNS.MagicDNS}
	if b.cfg.DNS.MagicDNS {
		c.Domains = append(c.Domains, b.cfg.Domain)
	}
	c.Domains = append(c.Domains, b.cfg.DNS.SearchDomains...)
	for _, ns := range b.cfg.DNS.Nameservers {
		c.Resolvers = append(c.Resolvers, ctrl.Resolver{Addr: ns})
	}
	for _, r := range b.st.DNSRecords() {
		c.ExtraRecords = append(c.ExtraRecords, ctrl.DNSRecord{Name: r.Name, Type: r.Type, Value: r.Value})
		if c.Routes == nil {
			c.Routes = make(map[string][]ctrl.Resolver)
		}
		// An empty resolver list makes 100.100.100.100 answer for the
		// name even outside the MagicDNS domain.
		c.Routes[r.Name+"."] = nil
	}
	return c
}

// userProfiles lists every user (the client upserts them, so sending all is
// always correct; tailnets have few users compared to nodes).
func (b *Batcher) userProfiles() []ctrl.UserProfile {
	us := b.st.Users()
	out := make([]ctrl.UserProfile, 0, len(us))
	for _, u := range us {
		login := u.Name
		if u.Email != "" {
			login = u.Email
		}
		out = append(out, ctrl.UserProfile{ID: ctrl.UserID(u.ID), LoginName: login, DisplayName: u.DisplayName})
	}
	return out
}
