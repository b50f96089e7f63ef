package cli

import (
	"testing"

	"weft.dev/weft/node/ipn"
)

// The lines match what `tailscale ping` v1.102.5 prints for each kind of
// result.
func TestPongLine(t *testing.T) {
	tests := []struct {
		res  ipn.PingResult
		typ  string
		want string
	}{
		{ipn.PingResult{NodeName: "ts1", NodeIP: "100.64.0.1", Endpoint: "198.18.1.3:41641", LatencySeconds: 0.0021},
			"disco", "pong from ts1 (100.64.0.1) via 198.18.1.3:41641 in 2ms"},
		{ipn.PingResult{NodeName: "ts1", NodeIP: "100.64.0.1", DERPRegionID: 900, DERPRegionCode: "weft", LatencySeconds: 0.0304},
			"disco", "pong from ts1 (100.64.0.1) via DERP(weft) in 30ms"},
		{ipn.PingResult{NodeName: "ts1", NodeIP: "100.64.0.1", PeerAPIPort: 51234, LatencySeconds: 0.0009},
			"TSMP", "pong from ts1 (100.64.0.1, 51234) via TSMP in 1ms"},
		{ipn.PingResult{NodeName: "weft1", NodeIP: "fd7a:115c:a1e0::2", LatencySeconds: 0.0004},
			"ICMP", "pong from weft1 (fd7a:115c:a1e0::2) via ICMP in 0s"},
		{ipn.PingResult{NodeName: "ts2", NodeIP: "100.64.0.3", PeerRelay: "198.18.1.9:7777:vni:1", LatencySeconds: 0.003},
			"disco", "pong from ts2 (100.64.0.3) via peer-relay(198.18.1.9:7777:vni:1) in 3ms"},
	}
	for _, tt := range tests {
		if got := pongLine(&tt.res, tt.typ); got != tt.want {
			t.Errorf("pongLine(%+v, %s)\n got %q\nwant %q", tt.res, tt.typ, got, tt.want)
		}
	}
}
