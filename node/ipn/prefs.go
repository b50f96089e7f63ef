package ipn

import (
	"net/netip"
	"reflect"
	"slices"

	"weft.dev/weft/wire/ctrl"
)

// NetfilterMode is how much of the host firewall weftd manages
// (preftype.NetfilterMode upstream: 0 off, 1 nodivert, 2 on).
type NetfilterMode int

// Netfilter modes.
const (
	NetfilterOff      NetfilterMode = 0
	NetfilterNoDivert NetfilterMode = 1
	NetfilterOn       NetfilterMode = 2
)

// String returns the --netfilter-mode spelling.
func (m NetfilterMode) String() string {
	switch m {
	case NetfilterOff:
		return "off"
	case NetfilterNoDivert:
		return "nodivert"
	}
	return "on"
}

// Prefs are one profile's user preferences. Field names and JSON are those
// of ipn.Prefs upstream (a subset: the fields weft's CLI can set), so the
// output of `debug prefs` reads the same.
type Prefs struct {
	// ControlURL is the login server (--login-server).
	ControlURL string
	// RouteAll accepts peers' subnet routes (--accept-routes).
	RouteAll bool
	// ExitNodeID is the chosen exit node's stable ID (resolved from ExitNodeIP).
	ExitNodeID ctrl.StableNodeID
	// ExitNodeIP is the exit node given by IP (--exit-node), until resolved.
	ExitNodeIP netip.Addr
	// ExitNodeAllowLANAccess keeps the LAN reachable while using an exit node.
	ExitNodeAllowLANAccess bool
	// CorpDNS applies the DNS configuration from control (--accept-dns).
	CorpDNS bool
	// RunSSH runs the Tailscale SSH server (--ssh).
	RunSSH bool
	// WantRunning is false after `down`.
	WantRunning bool
	// LoggedOut is true after `logout`: do not register until told to.
	LoggedOut bool
	// ShieldsUp blocks incoming connections (--shields-up).
	ShieldsUp bool
	// AdvertiseTags are requested ACL tags (--advertise-tags).
	AdvertiseTags []string
	// Hostname overrides the OS host name (--hostname).
	Hostname string
	// AdvertiseRoutes are subnet routes and, with 0.0.0.0/0 and ::/0, the
	// exit-node offer (--advertise-routes, --advertise-exit-node).
	AdvertiseRoutes []netip.Prefix
	// NoSNAT disables source NAT for subnet routes (--snat-subnet-routes=false).
	NoSNAT bool
	// NoStatefulFiltering disables stateful filtering of forwarded packets
	// (--stateful-filtering=false). A plain bool here; upstream has a tri-state.
	NoStatefulFiltering bool `json:",omitempty"`
	// NetfilterMode is --netfilter-mode.
	NetfilterMode NetfilterMode
	// OperatorUser is the Unix user allowed to change state (--operator).
	OperatorUser string `json:",omitempty"`
	// ProfileName is the profile's nickname (`login --nickname`).
	ProfileName string `json:",omitempty"`
	// PostureChecking is --report-posture.
	PostureChecking bool
}

// DefaultControlURL is the login server used when none is given. weft has
// no hosted service, so it is the same as upstream's: a user must pass
// --login-server to use weft-control or headscale.
const DefaultControlURL = "https://controlplane.tailscale.com"

// NewPrefs returns the defaults of a fresh profile, as `up` with no flags
// would set them.
func NewPrefs() Prefs {
	return Prefs{
		ControlURL:    "",
		CorpDNS:       true,
		WantRunning:   false,
		NetfilterMode: NetfilterOn,
	}
}

// Clone returns a deep copy.
func (p Prefs) Clone() Prefs {
	p.AdvertiseTags = slices.Clone(p.AdvertiseTags)
	p.AdvertiseRoutes = slices.Clone(p.AdvertiseRoutes)
	return p
}

// Equal reports whether p and q are the same.
func (p Prefs) Equal(q Prefs) bool { return reflect.DeepEqual(p.Clone(), q.Clone()) }

// AdvertisesExitNode reports whether both default routes are advertised.
func (p Prefs) AdvertisesExitNode() bool {
	return slices.Contains(p.AdvertiseRoutes, netip.MustParsePrefix("0.0.0.0/0")) &&
		slices.Contains(p.AdvertiseRoutes, netip.MustParsePrefix("::/0"))
}

// MaskedPrefs is a partial edit of Prefs: each field XSet says whether
// Prefs.X is to be applied (ipn.MaskedPrefs upstream, same JSON shape: the
// Prefs fields inline plus "<Name>Set": true).
type MaskedPrefs struct {
	Prefs

	ControlURLSet             bool `json:",omitempty"`
	RouteAllSet               bool `json:",omitempty"`
	ExitNodeIDSet             bool `json:",omitempty"`
	ExitNodeIPSet             bool `json:",omitempty"`
	ExitNodeAllowLANAccessSet bool `json:",omitempty"`
	CorpDNSSet                bool `json:",omitempty"`
	RunSSHSet                 bool `json:",omitempty"`
	WantRunningSet            bool `json:",omitempty"`
	LoggedOutSet              bool `json:",omitempty"`
	ShieldsUpSet              bool `json:",omitempty"`
	AdvertiseTagsSet          bool `json:",omitempty"`
	HostnameSet               bool `json:",omitempty"`
	AdvertiseRoutesSet        bool `json:",omitempty"`
	NoSNATSet                 bool `json:",omitempty"`
	NoStatefulFilteringSet    bool `json:",omitempty"`
	NetfilterModeSet          bool `json:",omitempty"`
	OperatorUserSet           bool `json:",omitempty"`
	ProfileNameSet            bool `json:",omitempty"`
	PostureCheckingSet        bool `json:",omitempty"`
}

// ApplyTo returns p with the masked fields of m applied.
func (m *MaskedPrefs) ApplyTo(p Prefs) Prefs {
	out := p.Clone()
	mv := reflect.ValueOf(m).Elem()
	src := reflect.ValueOf(m.Prefs.Clone())
	dst := reflect.ValueOf(&out).Elem()
	for i := 0; i < dst.NumField(); i++ {
		name := dst.Type().Field(i).Name
		if set := mv.FieldByName(name + "Set"); set.IsValid() && set.Bool() {
			dst.Field(i).Set(src.Field(i))
		}
	}
	return out
}

// IsEmpty reports whether no field is set.
func (m *MaskedPrefs) IsEmpty() bool {
	mv := reflect.ValueOf(m).Elem()
	for i := 0; i < mv.NumField(); i++ {
		f := mv.Field(i)
		if f.Kind() == reflect.Bool && f.Bool() {
			return false
		}
	}
	return true
}
