package ctrl

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/wire/key"
)

func testKey(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b
	}
	return k
}

var (
	nodeKey  = key.NodePublicFromRaw32(testKey(0x11))
	discoKey = key.DiscoPublicFromRaw32(testKey(0x22))
	machKey  = key.MachinePublicFromRaw32(testKey(0x33))
	hex11    = strings.Repeat("11", 32)
	hex22    = strings.Repeat("22", 32)
	hex33    = strings.Repeat("33", 32)
	zeros    = strings.Repeat("0", 64)
	ctrlTime = time.Date(2026, 11, 26, 10, 43, 18, 0, time.UTC)
)

func TestGoldenJSON(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want string
	}{
		{
			name: "keepalive is exactly the client's fast-path bytes",
			v:    &MapResponse{KeepAlive: true},
			want: KeepAliveJSON,
		},
		{
			name: "nil PacketFilter is absent (unchanged)",
			v:    &MapResponse{Domain: "weft.test"},
			want: `{"Domain":"weft.test"}`,
		},
		{
			name: "empty PacketFilter and Health are present (deny all, healthy)",
			v:    &MapResponse{PacketFilter: []FilterRule{}, Health: []string{}},
			want: `{"PacketFilter":[],"Health":[]}`,
		},
		{
			name: "allow-all filter",
			v:    &MapResponse{PacketFilter: AllowAll()},
			want: `{"PacketFilter":[{"SrcIPs":["*"],"DstPorts":[{"IP":"*","Ports":{"First":0,"Last":65535}}]}]}`,
		},
		{
			name: "PacketFilters null deletes a chunk",
			v:    &MapResponse{PacketFilters: map[string][]FilterRule{"*": nil}},
			want: `{"PacketFilters":{"*":null}}`,
		},
		{
			name: "zero KeyExpiry omitted, Online false explicit",
			v: &Node{
				ID: 1, StableID: "1", Name: "n1.weft.test.", User: 1,
				Key: nodeKey, Machine: machKey, DiscoKey: discoKey,
				Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")},
				Endpoints: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.7:41641")},
				HomeDERP:  900, Online: new(false),
			},
			want: `{"ID":1,"StableID":"1","Name":"n1.weft.test.","User":1,"Key":"nodekey:` + hex11 +
				`","Machine":"mkey:` + hex33 + `","DiscoKey":"discokey:` + hex22 +
				`","Addresses":["100.64.0.1/32"],"Endpoints":["198.51.100.7:41641"],"HomeDERP":900,"Online":false}`,
		},
		{
			name: "KeyExpiry, LastSeen and raw Hostinfo",
			v: &Node{
				ID: 2, StableID: "2", Name: "n2.", User: 1, Key: nodeKey,
				KeyExpiry: ctrlTime, LastSeen: &ctrlTime, Addresses: []netip.Prefix{},
				Hostinfo: json.RawMessage(`{"Hostname":"n2","Future":1}`),
			},
			want: `{"ID":2,"StableID":"2","Name":"n2.","User":1,"Key":"nodekey:` + hex11 +
				`","KeyExpiry":"2026-11-26T10:43:18Z","Addresses":[],"Hostinfo":{"Hostname":"n2","Future":1},"LastSeen":"2026-11-26T10:43:18Z"}`,
		},
		{
			name: "zero node: keys as prefix and zeros, Addresses null",
			v:    &Node{},
			want: `{"ID":0,"StableID":"","Name":"","User":0,"Key":"nodekey:` + zeros + `","Addresses":null}`,
		},
		{
			name: "patch: explicit empty Endpoints clears, nil fields absent",
			v:    &PeerChange{NodeID: 7, Endpoints: []netip.AddrPort{}, Online: new(true), DiscoKey: &discoKey},
			want: `{"NodeID":7,"Endpoints":[],"DiscoKey":"discokey:` + hex22 + `","Online":true}`,
		},
		{
			name: "bootstrap key response with zero legacy key",
			v:    &OverTLSPublicKeyResponse{PublicKey: machKey},
			want: `{"legacyPublicKey":"mkey:` + zeros + `","publicKey":"mkey:` + hex33 + `"}`,
		},
		{
			name: "register error",
			v:    &RegisterResponse{Error: "invalid auth key"},
			want: `{"User":{"ID":0,"DisplayName":""},"Login":{"ID":0,"Provider":"","LoginName":"","DisplayName":""},` +
				`"NodeKeyExpired":false,"MachineAuthorized":false,"AuthURL":"","NodeKeySignature":null,"Error":"invalid auth key"}`,
		},
		{
			name: "derp map",
			v: &DERPMap{Regions: map[int]*DERPRegion{900: {RegionID: 900, RegionCode: "weft", RegionName: "weft",
				Nodes: []*DERPNode{{Name: "900a", RegionID: 900, HostName: "derp.weft.test", STUNPort: -1, InsecureForTests: true}}}},
				OmitDefaultRegions: true},
			want: `{"Regions":{"900":{"RegionID":900,"RegionCode":"weft","RegionName":"weft","Nodes":[{"Name":"900a","RegionID":900,` +
				`"HostName":"derp.weft.test","STUNPort":-1,"InsecureForTests":true}]}},"omitDefaultRegions":true}`,
		},
		{
			name: "RegionScore empty map resets",
			v:    &DERPHomeParams{RegionScore: map[int]float64{}},
			want: `{"RegionScore":{}}`,
		},
		{
			name: "ssh policy uses lower-case names",
			v: &SSHPolicy{Rules: []*SSHRule{{
				Principals: []*SSHPrincipal{{Any: true}},
				SSHUsers:   map[string]string{"*": "="},
				Action:     &SSHAction{Accept: true, SessionDuration: time.Hour},
			}}},
			want: `{"rules":[{"principals":[{"any":true}],"sshUsers":{"*":"="},"action":{"accept":true,"sessionDuration":3600000000000}}]}`,
		},
		{
			name: "dns config",
			v: &DNSConfig{Resolvers: []Resolver{{Addr: "1.1.1.1"}}, Domains: []string{"weft.test"}, Proxied: true,
				Routes:       map[string][]Resolver{"weft.test.": {}},
				ExtraRecords: []DNSRecord{{Name: "db.weft.test.", Value: "100.64.0.9"}}},
			want: `{"Resolvers":[{"Addr":"1.1.1.1"}],"Routes":{"weft.test.":[]},"Domains":["weft.test"],"Proxied":true,` +
				`"ExtraRecords":[{"Name":"db.weft.test.","Value":"100.64.0.9"}]}`,
		},
		{
			name: "early noise",
			v:    &EarlyNoise{},
			want: `{"nodeKeyChallenge":"chalpub:` + zeros + `"}`,
		},
		{
			name: "token response",
			v:    &TokenResponse{IDToken: "jwt"},
			want: `{"id_token":"jwt"}`,
		},
		{
			name: "hostinfo tri-state bools and ssh keys",
			v:    &Hostinfo{Hostname: "h", Userspace: new(false), SSHHostKeys: []string{"ssh-ed25519 AAAA"}},
			want: `{"Hostname":"h","sshHostKeys":["ssh-ed25519 AAAA"],"Userspace":false}`,
		},
		{
			name: "debug",
			v:    &MapResponse{Debug: &Debug{DisableLogTail: true}, CollectServices: new(false), ControlTime: &ctrlTime},
			want: `{"CollectServices":false,"ControlTime":"2026-11-26T10:43:18Z","Debug":{"DisableLogTail":true}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("JSON mismatch\n got: %s\nwant: %s", got, tt.want)
			}
			// Decoding the golden text must give back the same value.
			back := reflect.New(reflect.TypeOf(tt.v).Elem()).Interface()
			if err := json.Unmarshal([]byte(tt.want), back); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if h, ok := back.(*Hostinfo); ok {
				h.Raw = nil
			}
			if !reflect.DeepEqual(back, tt.v) {
				t.Errorf("round trip mismatch\n got: %+v\nwant: %+v", back, tt.v)
			}
		})
	}
}

func TestMapResponseNilVersusEmptyDecode(t *testing.T) {
	var m MapResponse
	if err := json.Unmarshal([]byte(`{"PacketFilter":[],"Peers":[],"Health":null}`), &m); err != nil {
		t.Fatal(err)
	}
	if m.PacketFilter == nil || len(m.PacketFilter) != 0 {
		t.Errorf("PacketFilter = %#v, want empty non-nil", m.PacketFilter)
	}
	if m.Peers == nil {
		t.Errorf("Peers = nil, want empty non-nil")
	}
	if m.Health != nil || m.UserProfiles != nil {
		t.Errorf("Health/UserProfiles = %#v/%#v, want nil", m.Health, m.UserProfiles)
	}
}

func TestHostinfoRawKeepsUnknownFields(t *testing.T) {
	in := `{"Hostname":"h","OS":"linux","SomeFutureField":{"x":[1,2]},"NetInfo":{"PreferredDERP":900,"New":true}}`
	var req MapRequest
	if err := json.Unmarshal([]byte(`{"Version":142,"Hostinfo":`+in+`}`), &req); err != nil {
		t.Fatal(err)
	}
	if req.Hostinfo.Hostname != "h" || req.Hostinfo.NetInfo.PreferredDERP != 900 {
		t.Errorf("fields not decoded: %+v", req.Hostinfo)
	}
	raw, err := req.Hostinfo.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != in {
		t.Errorf("JSON() = %s, want %s", raw, in)
	}
	req.Hostinfo.Raw = nil
	raw, _ = req.Hostinfo.JSON()
	if want := `{"OS":"linux","Hostname":"h","NetInfo":{"PreferredDERP":900}}`; string(raw) != want {
		t.Errorf("re-encoded = %s, want %s", raw, want)
	}
	var nilH *Hostinfo
	if raw, err := nilH.JSON(); raw != nil || err != nil {
		t.Errorf("nil Hostinfo JSON = %s, %v", raw, err)
	}
}

func TestLegacyDERPString(t *testing.T) {
	if got := LegacyDERPString(900); got != "127.3.3.40:900" {
		t.Errorf("LegacyDERPString = %q", got)
	}
	for _, tt := range []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"127.3.3.40:900", 900, false},
		{"127.3.3.40:0", 0, true},
		{"127.3.3.41:1", 0, true},
		{"127.3.3.40:x", 0, true},
	} {
		got, err := ParseLegacyDERPString(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseLegacyDERPString(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
