package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/relay"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

const derpKeySetting = "derp_private_key"

// embeddedRegionID is the region weft-control's own relay takes in the DERP
// map (900–999 are reserved for self-hosted regions; headscale uses 999).
const embeddedRegionID = 900

// newEmbeddedRelay builds the in-process DERP relay. Only nodes this server
// knows (and whose key has not expired) may use it.
func newEmbeddedRelay(ctx context.Context, cfg Config, st store.Store, nodes *state.State) (*relay.Server, error) {
	priv, err := loadOrCreateDERPKey(ctx, st)
	if err != nil {
		return nil, err
	}
	return relay.New(relay.Options{
		PrivateKey: priv,
		Logger:     cfg.Logger.With("component", "derp"),
		Verify: func(ctx context.Context, client key.NodePublic, _ relay.ClientInfo, remote netip.AddrPort) error {
			n, ok := nodes.NodeByKey(client)
			if !ok {
				return fmt.Errorf("node key %s is not registered with this control server", client.ShortString())
			}
			if n.IsExpired(nodes.Now()) {
				return fmt.Errorf("node %d's key has expired", n.ID)
			}
			return nil
		},
	})
}

func loadOrCreateDERPKey(ctx context.Context, st store.Store) (key.NodePrivate, error) {
	var k key.NodePrivate
	err := loadOrCreateSetting(ctx, st, derpKeySetting, "DERP key", &k, func() textKey { return key.NewNode() })
	return k, err
}

// embeddedRegion describes the embedded relay as clients reach it: the
// server URL's host and port for DERP, and the STUN listener's port.
func embeddedRegion(serverURL, stunListen string) (*ctrl.DERPRegion, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	port := 443
	if u.Scheme == "http" {
		port = 80
	}
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	n := &ctrl.DERPNode{Name: "900a", RegionID: embeddedRegionID, HostName: host, DERPPort: port, STUNPort: -1}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() {
			n.IPv4, n.IPv6 = ip.String(), "none"
		} else {
			n.IPv6, n.IPv4 = ip.String(), "none"
		}
	}
	if stunListen != "" {
		_, sp, err := net.SplitHostPort(stunListen)
		if err != nil {
			return nil, fmt.Errorf("--stun-listen %q: %w", stunListen, err)
		}
		n.STUNPort, _ = strconv.Atoi(sp)
	}
	return &ctrl.DERPRegion{RegionID: embeddedRegionID, RegionCode: "weft", RegionName: "weft-control", Nodes: []*ctrl.DERPNode{n}}, nil
}

// mountRelay adds the relay's endpoints to the public mux.
func mountRelay(mux *http.ServeMux, r *relay.Server) {
	mux.Handle("/derp", r)
	mux.HandleFunc("/derp/probe", relay.ServeProbe)
	mux.HandleFunc("/derp/latency-check", relay.ServeProbe)
	mux.HandleFunc("/generate_204", relay.ServeNoContent)
}
