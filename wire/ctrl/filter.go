package ctrl

// FilterRule is one packet-filter rule (tailcfg.FilterRule). Rules are
// evaluated by the receiving node on inbound packets that start a flow.
type FilterRule struct {
	// SrcIPs are IPs, CIDRs, "a-b" ranges, "*" (everything), or "cap:<node capability>".
	SrcIPs []string `json:"SrcIPs"`
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
	IP    string    `json:"IP"`
	Ports PortRange `json:"Ports"`
}

// PortRange is an inclusive port range; First 0 and Last 65535 means any port.
type PortRange struct {
	First uint16 `json:"First"`
	Last  uint16 `json:"Last"`
}

// PortRangeAny matches every port.
var PortRangeAny = PortRange{First: 0, Last: 65535}

// CapGrant grants capabilities on the listed destination prefixes.
type CapGrant struct {
	Dsts   []string                     `json:"Dsts"`
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
