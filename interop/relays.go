package interop

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
)

// RelayKind names a DERP relay implementation a [Relay] runs.
type RelayKind string

// The relays the lab can run: weft's and the official one.
const (
	WeftDERP     RelayKind = "weft-derp"
	OfficialDERP RelayKind = "derper"
)

// RelayConfig tunes [StartRelay].
type RelayConfig struct {
	// Bin is the relay binary: cmd/weft-derp's build or [TSBins].Derper.
	Bin string
	// MeshKey (64 hex digits), when set, is given to the relay through
	// TAILSCALE_DERPER_MESH_KEY, which both read in -dev mode.
	MeshKey string
	// MeshWith are the addresses of the other relays of the region (each
	// serving `-dev` plain HTTP on DERPDevHTTPPort) to mesh with.
	MeshWith []netip.Addr
	// Args and Env are added to the relay's flags and environment.
	Args []string
	Env  []string
}

// Relay is a DERP relay started like `derper -dev`: plain HTTP on
// DERPDevHTTPPort, STUN on DERPSTUNPort, a throw-away server key. Official
// clients reach it with TS_DEBUG_USE_DERP_HTTP=1.
type Relay struct {
	Kind RelayKind
	Node *nettest.Node
	Proc *nettest.Proc
}

// StartRelay runs a relay of kind in node and waits until it answers
// /generate_204 and its STUN port is bound.
//
// Meshing differs per kind only in how peers are named: weft-derp takes a
// full http:// URL; derper always builds https://<host>/derp and speaks
// plain HTTP to it only with TS_DEBUG_USE_DERP_HTTP=1 in its environment
// (derp/derphttp useHTTPS upstream), which StartRelay then sets.
func StartRelay(t testing.TB, node *nettest.Node, kind RelayKind, cfg RelayConfig) *Relay {
	t.Helper()
	args := []string{cfg.Bin, "-dev"}
	var env []string
	if cfg.MeshKey != "" {
		env = append(env, "TAILSCALE_DERPER_MESH_KEY="+cfg.MeshKey)
	}
	if len(cfg.MeshWith) > 0 {
		var list string
		for i, a := range cfg.MeshWith {
			if i > 0 {
				list += ","
			}
			switch kind {
			case WeftDERP:
				list += fmt.Sprintf("http://%s:%d/derp", a, DERPDevHTTPPort)
			default:
				list += fmt.Sprintf("%s:%d", a, DERPDevHTTPPort)
			}
		}
		args = append(args, "-mesh-with", list)
		if kind == OfficialDERP {
			env = append(env, "TS_DEBUG_USE_DERP_HTTP=1")
		}
	}
	r := &Relay{Kind: kind, Node: node}
	r.Proc = node.Start(nettest.Cmd{Name: string(kind), Args: append(args, cfg.Args...), Env: append(env, cfg.Env...)})
	client := node.HTTPClient()
	nettest.WaitFor(t, 30*time.Second, func() error {
		if exited, err := r.Proc.Exited(); exited {
			return fmt.Errorf("%s exited (%v):\n%s", kind, err, r.Proc.Tail(20))
		}
		if err := Get204(client, r.URL()+"/generate_204"); err != nil {
			return err
		}
		return UDPPortBound(node, DERPSTUNPort)
	})
	return r
}

// URL is the relay's base URL, http://<addr>:3340.
func (r *Relay) URL() string {
	return fmt.Sprintf("http://%s:%d", r.Node.Addr, DERPDevHTTPPort)
}

// DERPURL is the relay's DERP endpoint, for DERP clients.
func (r *Relay) DERPURL() string { return r.URL() + "/derp" }

// RegionMap is a one-region DERP map with a node at each address (relays
// started by [StartRelay]), in order: official clients connect to the first
// node they can reach (derphttp dialRegion upstream).
func RegionMap(regionID int, code, name string, addrs ...netip.Addr) *DERPMap {
	reg := &DERPRegion{RegionID: regionID, RegionCode: code, RegionName: name}
	for i, a := range addrs {
		reg.Nodes = append(reg.Nodes, &DERPNode{
			Name:             fmt.Sprintf("%d%c", regionID, 'a'+i),
			RegionID:         regionID,
			HostName:         a.String(),
			IPv4:             a.String(),
			IPv6:             "none",
			DERPPort:         DERPDevHTTPPort,
			STUNPort:         DERPSTUNPort,
			InsecureForTests: true,
		})
	}
	return &DERPMap{Regions: map[int]*DERPRegion{regionID: reg}}
}

// Metric reads one unlabelled counter or gauge from weft-derp's /metrics
// (the official derper serves its variables only to loopback).
func (r *Relay) Metric(name string) (float64, error) {
	if r.Kind != WeftDERP {
		return 0, fmt.Errorf("%s serves no /metrics to the lab", r.Kind)
	}
	resp, err := r.Node.HTTPClient().Get(r.URL() + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("no metric %s on %s", name, r.URL())
}
