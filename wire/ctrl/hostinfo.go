package ctrl

import (
	"bytes"
	"encoding/json"
	"net/netip"
)

// Hostinfo describes a client host (tailcfg.Hostinfo). Clients send it in
// RegisterRequest and MapRequest; servers echo it in Node.Hostinfo.
//
// tailcfg's opt.Bool fields ("true"/"false"/unset) are *bool here: nil is
// unset and omitted. Unknown JSON fields are ignored when decoding; the exact
// bytes received are kept in Raw so that a server can echo fields weft does
// not know about.
type Hostinfo struct {
	IPNVersion    string `json:",omitzero"` // client version, e.g. "1.102.5-t…"
	FrontendLogID string `json:",omitzero"` // logtail ID of the frontend
	BackendLogID  string `json:",omitzero"` // logtail ID of the backend
	OS            string `json:",omitzero"` // "linux", "windows", "macOS", …
	// OSVersion is the kernel version on Linux, the OS version elsewhere.
	OSVersion       string `json:",omitzero"`
	Container       *bool  `json:",omitzero"` // best-effort: running in a container
	Env             string `json:",omitzero"` // hostinfo.EnvType, e.g. "k8s"
	Distro          string `json:",omitzero"` // "debian", "ubuntu", …
	DistroVersion   string `json:",omitzero"` // "24.04", …
	DistroCodeName  string `json:",omitzero"` // "noble", …
	App             string `json:",omitzero"` // tsnet app name
	Desktop         *bool  `json:",omitzero"` // a desktop was detected (Linux)
	Package         string `json:",omitzero"` // package source ("choco", "appstore", …)
	DeviceModel     string `json:",omitzero"` // phone model
	PushDeviceToken string `json:",omitzero"` // APNs token
	Hostname        string `json:",omitzero"` // host name, used to name the node
	ShieldsUp       bool   `json:",omitzero"` // host blocks incoming connections
	ShareeNode      bool   `json:",omitzero"` // in the netmap because shared to this user
	NoLogsNoSupport bool   `json:",omitzero"` // opted out of log upload
	RemoteConfig    bool   `json:",omitzero"` // delegated prefs/LocalAPI to the tailnet admin (c2n)
	WireIngress     bool   `json:",omitzero"` // wants Funnel wiring even if not enabled now
	IngressEnabled  bool   `json:",omitzero"` // has a Funnel endpoint enabled
	AllowsUpdate    bool   `json:",omitzero"` // accepts admin-driven remote updates
	Machine         string `json:",omitzero"` // uname -m
	GoArch          string `json:",omitzero"` // GOARCH of the binary
	GoArchVar       string `json:",omitzero"` // GOARM, GOAMD64, …
	GoVersion       string `json:",omitzero"` // Go version of the binary
	// RoutableIPs are the advertised routes (--advertise-routes / exit node).
	RoutableIPs []netip.Prefix `json:",omitempty"`
	// RequestTags are the tags requested with --advertise-tags.
	RequestTags []string `json:",omitempty"`
	// WoLMACs are Wake-on-LAN MAC addresses (lower-case hex with colons).
	WoLMACs []string `json:",omitempty"`
	// Services are the advertised services (peerapi ports and listeners).
	Services []Service `json:",omitempty"`
	// NetInfo is the host's network conditions; absent on first login.
	NetInfo *NetInfo `json:",omitzero"`
	// SSHHostKeys are the host's SSH public keys (Go name SSH_HostKeys upstream).
	SSHHostKeys     []string `json:"sshHostKeys,omitempty"`
	Cloud           string   `json:",omitzero"` // cloud provider, if detected
	Userspace       *bool    `json:",omitzero"` // running in userspace (netstack) mode
	UserspaceRouter *bool    `json:",omitzero"` // subnet router runs in userspace
	AppConnector    *bool    `json:",omitzero"` // runs the app-connector service
	ServicesHash    string   `json:",omitzero"` // hash of the tailnet services config
	PeerRelay       bool     `json:",omitzero"` // willing to relay for other peers
	// ExitNodeID is the client's selected exit node, empty when none.
	ExitNodeID StableNodeID `json:",omitzero"`
	// Location is the node's declared location, if any.
	Location *Location `json:",omitzero"`
	// TPM describes the TPM device, if any.
	TPM *TPMInfo `json:",omitzero"`
	// StateEncrypted reports whether node state is encrypted at rest.
	StateEncrypted *bool `json:",omitzero"`

	// Raw holds the exact JSON this value was decoded from (set by
	// UnmarshalJSON, never by encoding). Whoever edits the decoded fields must
	// clear it, or JSON returns the stale original.
	Raw json.RawMessage `json:"-"`
}

// hostinfoFields has Hostinfo's fields without its methods, for decoding.
type hostinfoFields Hostinfo

// UnmarshalJSON decodes the fields and keeps a copy of data in Raw.
func (h *Hostinfo) UnmarshalJSON(data []byte) error {
	var f hostinfoFields
	if err := json.Unmarshal(data, &f); err != nil {
		return err
	}
	*h = Hostinfo(f)
	if !bytes.Equal(data, []byte("null")) {
		h.Raw = bytes.Clone(data)
	}
	return nil
}

// JSON returns the JSON to put in Node.Hostinfo: Raw when set, so unknown
// fields survive, else the encoding of the fields. A nil h gives nil.
func (h *Hostinfo) JSON() (json.RawMessage, error) {
	if h == nil {
		return nil, nil
	}
	if len(h.Raw) > 0 {
		return h.Raw, nil
	}
	return json.Marshal(h)
}

// Service is a service the host advertises (tailcfg.Service).
type Service struct {
	// Proto is "tcp", "udp", or one of the peerapi meta protocols
	// ("peerapi4", "peerapi6", "peerapi-dns-proxy").
	Proto string
	// Port is the port number (1 for "peerapi-dns-proxy").
	Port uint16
	// Description is usually the listening process name.
	Description string `json:",omitempty"`
}

// Service protocols tailscaled advertises.
const (
	ServiceTCP             = "tcp"
	ServiceUDP             = "udp"
	ServicePeerAPI4        = "peerapi4"
	ServicePeerAPI6        = "peerapi6"
	ServicePeerAPIDNSProxy = "peerapi-dns-proxy"
)

// Location is a node's declared geographic location (tailcfg.Location),
// used for exit-node choice.
type Location struct {
	Country     string  `json:",omitempty"` // "Canada"
	CountryCode string  `json:",omitempty"` // ISO 3166-1 alpha-2, upper case
	City        string  `json:",omitempty"` // "Squamish"
	CityCode    string  `json:",omitempty"` // IATA/ICAO/ISO 3166-2 code, upper case
	Latitude    float64 `json:",omitempty"`
	Longitude   float64 `json:",omitempty"`
	// Priority orders exit nodes matching the same location; higher wins.
	Priority int `json:",omitempty"`
}

// TPMInfo describes a host's TPM device (tailcfg.TPMInfo).
type TPMInfo struct {
	Manufacturer    string `json:",omitzero"`
	Vendor          string `json:",omitzero"`
	Model           int    `json:",omitzero"`
	FirmwareVersion uint64 `json:",omitzero"`
	SpecRevision    int    `json:",omitzero"`
	FamilyIndicator string `json:",omitzero"`
}

// NetInfo is a host's view of its network (tailcfg.NetInfo), from netcheck.
// Tri-state booleans are *bool (nil = not checked).
type NetInfo struct {
	MappingVariesByDestIP *bool `json:",omitzero"` // NAT mapping depends on destination (hard NAT)
	WorkingIPv6           *bool `json:",omitzero"` // IPv6 internet works
	OSHasIPv6             *bool `json:",omitzero"` // OS supports IPv6
	WorkingUDP            *bool `json:",omitzero"` // UDP internet works
	WorkingICMPv4         *bool `json:",omitzero"` // ICMPv4 works
	HavePortMap           bool  `json:",omitzero"` // a UPnP/PMP/PCP mapping is open
	UPnP                  *bool `json:",omitzero"`
	PMP                   *bool `json:",omitzero"`
	PCP                   *bool `json:",omitzero"`
	// PreferredDERP is the home DERP region (0 = unknown); servers copy it
	// to peers' Node.HomeDERP.
	PreferredDERP int `json:",omitzero"`
	// LinkType is "wired", "wifi" or "mobile", if known.
	LinkType string `json:",omitzero"`
	// DERPLatency maps "<regionID>-v4"/"-v6" to seconds.
	DERPLatency map[string]float64 `json:",omitempty"`
	// FirewallMode is Linux's "{nft,ipt}-REASON".
	FirewallMode string `json:",omitzero"`
}
