package ctrl

import (
	"errors"
	"fmt"
	"slices"
)

// DERPMap lists the DERP relays nodes may use (tailcfg.DERPMap;
// derp-disco.md §1.11). In a MapResponse a nil DERPMap is "unchanged"; a
// DERPMap whose Regions is nil keeps the client's old regions.
type DERPMap struct {
	// HomeParams tunes home-region choice; nil keeps the previous value.
	HomeParams *DERPHomeParams `json:",omitempty"`
	// Regions maps region ID to region. The key must equal the region's
	// RegionID and no value may be null (tailscale#17564, #14752); Validate
	// checks both. Always sent, as upstream does ("Regions":null when nil).
	Regions map[int]*DERPRegion
	// OmitDefaultRegions only matters to a control server merging maps.
	OmitDefaultRegions bool `json:"omitDefaultRegions,omitempty"`
}

// DERPHomeParams are knobs for choosing a home region (tailcfg.DERPHomeParams).
type DERPHomeParams struct {
	// RegionScore multiplies a region's measured latency when choosing home
	// (< 1 favours it). Nil keeps the client's previous scores; an empty map
	// resets them, so it is omitted only when nil (tailcfg cannot send {}).
	RegionScore map[int]float64 `json:",omitzero"`
}

// DERPRegion is one DERP region: a set of interchangeable relay nodes (tailcfg.DERPRegion).
type DERPRegion struct {
	// RegionID is > 0; 900–999 are reserved for self-hosted regions.
	RegionID int
	// RegionCode is a short name, e.g. "weft".
	RegionCode string
	// RegionName is the display name.
	RegionName string
	Latitude   float64 `json:",omitempty"`
	Longitude  float64 `json:",omitempty"`
	// Avoid is deprecated upstream.
	Avoid bool `json:",omitempty"`
	// NoMeasureNoHome: never measured, never home; still usable to reach
	// peers homed there (capver ≥ 115).
	NoMeasureNoHome bool `json:",omitempty"`
	// Nodes are the region's relays in priority order.
	Nodes []*DERPNode
}

// DERPNode is one DERP relay and/or STUN server (tailcfg.DERPNode).
type DERPNode struct {
	// Name is globally unique, e.g. "900a".
	Name string
	// RegionID is the region this node belongs to.
	RegionID int
	// HostName is the DNS name; required (also the TLS name unless CertName is set).
	HostName string
	// CertName is the expected TLS name, or "sha256-raw:<hex>" to pin a certificate.
	CertName string `json:",omitempty"`
	// IPv4 and IPv6 are literal addresses, "" to use DNS, or "none" to disable the family.
	IPv4 string `json:",omitempty"`
	IPv6 string `json:",omitempty"`
	// STUNPort is the STUN UDP port: 0 means 3478, -1 means no STUN.
	STUNPort int `json:",omitempty"`
	// STUNOnly marks a node that only serves STUN.
	STUNOnly bool `json:",omitempty"`
	// DERPPort is the HTTPS port; 0 means 443.
	DERPPort int `json:",omitempty"`
	// InsecureForTests skips TLS verification (honoured by release builds: tests only).
	InsecureForTests bool `json:",omitempty"`
	// STUNTestIP overrides the STUN destination, for tests.
	STUNTestIP string `json:",omitempty"`
	// CanPort80 says the node also serves plain HTTP on port 80 (captive-portal checks).
	CanPort80 bool `json:",omitempty"`
}

// Default DERP ports.
const (
	DefaultSTUNPort = 3478
	DefaultDERPPort = 443
)

// STUNPortOrDefault returns the STUN port to use, or 0 when STUN is off.
func (n *DERPNode) STUNPortOrDefault() int {
	switch {
	case n.STUNPort == 0:
		return DefaultSTUNPort
	case n.STUNPort < 0:
		return 0
	}
	return n.STUNPort
}

// DERPPortOrDefault returns the HTTPS port to use.
func (n *DERPNode) DERPPortOrDefault() int {
	if n.DERPPort == 0 {
		return DefaultDERPPort
	}
	return n.DERPPort
}

// RegionIDs returns the region IDs, sorted.
func (m *DERPMap) RegionIDs() []int {
	ids := make([]int, 0, len(m.Regions))
	for id := range m.Regions {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Validate reports the problems that would make clients misbehave (the first
// one per region): a
// region key that differs from its RegionID, a null region, a region
// without nodes, a null node, a node without HostName or in another region,
// or a port out of range. A nil map or nil Regions is valid (it means
// "unchanged" in a MapResponse).
func (m *DERPMap) Validate() error {
	if m == nil {
		return nil
	}
	var errs []error
	for _, id := range m.RegionIDs() {
		if err := validateRegion(id, m.Regions[id]); err != nil {
			errs = append(errs, err)
		}
	}
	if m.HomeParams != nil {
		for id, score := range m.HomeParams.RegionScore {
			if score <= 0 {
				errs = append(errs, fmt.Errorf("derp map: HomeParams.RegionScore[%d] = %v, want > 0", id, score))
			}
		}
	}
	return errors.Join(errs...)
}

func validateRegion(id int, r *DERPRegion) error {
	switch {
	case r == nil:
		return fmt.Errorf("derp map: region %d is null", id)
	case id <= 0:
		return fmt.Errorf("derp map: region ID %d, want > 0", id)
	case r.RegionID != id:
		return fmt.Errorf("derp map: region key %d holds RegionID %d; they must match", id, r.RegionID)
	case len(r.Nodes) == 0:
		return fmt.Errorf("derp map: region %d has no nodes", id)
	}
	for i, n := range r.Nodes {
		switch {
		case n == nil:
			return fmt.Errorf("derp map: region %d node %d is null", id, i)
		case n.HostName == "":
			return fmt.Errorf("derp map: region %d node %d (%q) has no HostName", id, i, n.Name)
		case n.RegionID != id:
			return fmt.Errorf("derp map: region %d node %q has RegionID %d", id, n.Name, n.RegionID)
		case n.STUNPort < -1 || n.STUNPort > 65535:
			return fmt.Errorf("derp map: region %d node %q STUNPort %d out of range", id, n.Name, n.STUNPort)
		case n.DERPPort < 0 || n.DERPPort > 65535:
			return fmt.Errorf("derp map: region %d node %q DERPPort %d out of range", id, n.Name, n.DERPPort)
		}
	}
	return nil
}
