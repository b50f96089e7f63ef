package ctrl

import "net/netip"

// FilterRule is one packet-filter rule (tailcfg.FilterRule). Rules are
// evaluated by the receiving node on inbound packets that start a flow.
type FilterRule struct {
	// SrcIPs are IPs, CIDRs, "a-b" ranges, "*" (everything), or "cap:<node capability>".
	SrcIPs []string `json:"SrcIPs"`
	// SrcBits is deprecated (pre-capver 7 CIDR lengths); kept for pass-through.
	SrcBits []int `json:"SrcBits,omitempty"`
	// DstPorts are the destinations allowed; mutually exclusive with CapGrant.
	DstPorts []NetPortRange `json:"DstPorts,omitempty"`
	// IPProto lists IANA protocol numbers; empty means TCP, UDP and ICMP (v4+v6).
	IPProto []int `json:"IPProto,omitempty"`
	// CapGrant grants peer capabilities instead of packets.
	CapGrant []CapGrant `json:"CapGrant,omitempty"`
}

// NetPortRange is a destination IP form (same forms as SrcIPs; "*" means any
// of the receiving node's addresses) and a port range.
type NetPortRange struct {
	// IP is an IP, CIDR, "a-b" range or "*".
	IP string `json:"IP"`
	// Bits is deprecated (the 2020 way to make IP a CIDR); kept for pass-through.
	Bits *int `json:"Bits,omitempty"`
	// Ports is the inclusive port range.
	Ports PortRange `json:"Ports"`
}

// PortRange is an inclusive port range; First 0 and Last 65535 means any port.
type PortRange struct {
	First uint16 `json:"First"`
	Last  uint16 `json:"Last"`
}

// PortRangeAny matches every port.
var PortRangeAny = PortRange{First: 0, Last: 65535}

// CapGrant grants peer capabilities on the listed destination prefixes
// (tailcfg.CapGrant).
type CapGrant struct {
	// Dsts are the destination prefixes the grant applies to. Prefixes, as in
	// tailcfg: a client rejects the whole MapResponse on a malformed one.
	Dsts []netip.Prefix `json:"Dsts"`
	// Caps is deprecated: use CapMap. Kept for pass-through.
	Caps []string `json:"Caps,omitempty"`
	// CapMap maps peer capability names to their raw JSON values.
	CapMap map[string][]RawMessageValue `json:"CapMap,omitempty"`
}

// IANA protocol numbers used in FilterRule.IPProto.
const (
	ProtoICMP   = 1
	ProtoIGMP   = 2
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoGRE    = 47
	ProtoESP    = 50
	ProtoAH     = 51
	ProtoICMPv6 = 58
	ProtoSCTP   = 132
)

// AllowAll is the filter weft-control sends while no policy is set.
func AllowAll() []FilterRule {
	return []FilterRule{{
		SrcIPs:   []string{"*"},
		DstPorts: []NetPortRange{{IP: "*", Ports: PortRangeAny}},
	}}
}
