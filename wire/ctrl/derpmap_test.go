package ctrl

import (
	"encoding/json"
	"strings"
	"testing"
)

func validDERPMap() *DERPMap {
	return &DERPMap{Regions: map[int]*DERPRegion{
		900: {RegionID: 900, RegionCode: "weft", Nodes: []*DERPNode{{Name: "900a", RegionID: 900, HostName: "derp.weft.test"}}},
	}}
}

func TestDERPMapValidate(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(m *DERPMap)
		wantErr string // substring; "" means valid
	}{
		{"valid", func(*DERPMap) {}, ""},
		{"nil regions means unchanged", func(m *DERPMap) { m.Regions = nil }, ""},
		{"key differs from RegionID", func(m *DERPMap) { m.Regions[901] = m.Regions[900]; delete(m.Regions, 900) }, "must match"},
		{"null region", func(m *DERPMap) { m.Regions[901] = nil }, "region 901 is null"},
		{"region without nodes", func(m *DERPMap) { m.Regions[900].Nodes = nil }, "no nodes"},
		{"null node", func(m *DERPMap) { m.Regions[900].Nodes = append(m.Regions[900].Nodes, nil) }, "node 1 is null"},
		{"node without HostName", func(m *DERPMap) { m.Regions[900].Nodes[0].HostName = "" }, "no HostName"},
		{"node in other region", func(m *DERPMap) { m.Regions[900].Nodes[0].RegionID = 1 }, "has RegionID 1"},
		{"non-positive region", func(m *DERPMap) { m.Regions[0] = &DERPRegion{} }, "want > 0"},
		{"STUN off is fine", func(m *DERPMap) { m.Regions[900].Nodes[0].STUNPort = -1 }, ""},
		{"STUN port out of range", func(m *DERPMap) { m.Regions[900].Nodes[0].STUNPort = -2 }, "STUNPort"},
		{"DERP port out of range", func(m *DERPMap) { m.Regions[900].Nodes[0].DERPPort = 70000 }, "DERPPort"},
		{"bad region score", func(m *DERPMap) { m.HomeParams = &DERPHomeParams{RegionScore: map[int]float64{900: 0}} }, "RegionScore"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validDERPMap()
			tt.edit(m)
			err := m.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
	var nilMap *DERPMap
	if err := nilMap.Validate(); err != nil {
		t.Errorf("nil map: %v", err)
	}
}

func TestDERPMapValidateDecoded(t *testing.T) {
	// What a hostile or buggy source could hand us: a null region and a key mismatch.
	var m DERPMap
	if err := json.Unmarshal([]byte(`{"Regions":{"1":null,"2":{"RegionID":3,"Nodes":[{"HostName":"x","RegionID":3}]}}}`), &m); err != nil {
		t.Fatal(err)
	}
	err := m.Validate()
	if err == nil || !strings.Contains(err.Error(), "region 1 is null") || !strings.Contains(err.Error(), "region key 2 holds RegionID 3") {
		t.Errorf("Validate() = %v, want both problems reported", err)
	}
}

func TestDERPNodePorts(t *testing.T) {
	for _, tt := range []struct{ stun, wantSTUN, derp, wantDERP int }{
		{0, 3478, 0, 443},
		{-1, 0, 8443, 8443},
		{3479, 3479, 0, 443},
	} {
		n := &DERPNode{STUNPort: tt.stun, DERPPort: tt.derp}
		if got := n.STUNPortOrDefault(); got != tt.wantSTUN {
			t.Errorf("STUNPort %d: got %d, want %d", tt.stun, got, tt.wantSTUN)
		}
		if got := n.DERPPortOrDefault(); got != tt.wantDERP {
			t.Errorf("DERPPort %d: got %d, want %d", tt.derp, got, tt.wantDERP)
		}
	}
}
