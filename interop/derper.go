package interop

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
)

// Ports of `derper -dev`: it forces -a :3340 (plain HTTP on every address of
// the namespace; no TLS, no port 80 listener, a fresh random key, no config
// file) and keeps the default -stun-port 3478 (cmd/derper/derper.go in
// tailscale v1.102.5).
const (
	DERPDevHTTPPort = 3340
	DERPSTUNPort    = 3478
	// DERPRegionID is the region of the lab's relay in [Derper.Map].
	DERPRegionID = 900
)

// DERPMap is the wire shape of tailcfg.DERPMap that control servers serve
// and read from files. Only the fields the lab needs are declared.
type DERPMap struct {
	Regions map[int]*DERPRegion `json:"Regions"`
}

// DERPRegion is tailcfg.DERPRegion's wire shape.
type DERPRegion struct {
	RegionID   int         `json:"RegionID"`
	RegionCode string      `json:"RegionCode"`
	RegionName string      `json:"RegionName"`
	Nodes      []*DERPNode `json:"Nodes"`
}

// DERPNode is tailcfg.DERPNode's wire shape.
type DERPNode struct {
	Name     string `json:"Name"`
	RegionID int    `json:"RegionID"`
	HostName string `json:"HostName"`
	IPv4     string `json:"IPv4,omitempty"`
	// IPv6 "none" tells clients not to try IPv6 for this node.
	IPv6             string `json:"IPv6,omitempty"`
	DERPPort         int    `json:"DERPPort,omitempty"`
	STUNPort         int    `json:"STUNPort,omitempty"`
	InsecureForTests bool   `json:"InsecureForTests,omitempty"`
}

// WriteFile writes m as JSON to path.
func (m *DERPMap) WriteFile(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// LabDERPMap is a one-region map (region 900, "test") with a single node at
// addr serving DERP on httpPort and STUN on stunPort.
func LabDERPMap(addr netip.Addr, httpPort, stunPort int) *DERPMap {
	return &DERPMap{Regions: map[int]*DERPRegion{
		DERPRegionID: {
			RegionID:   DERPRegionID,
			RegionCode: "test",
			RegionName: "test",
			Nodes: []*DERPNode{{
				Name:             fmt.Sprintf("%da", DERPRegionID),
				RegionID:         DERPRegionID,
				HostName:         addr.String(),
				IPv4:             addr.String(),
				IPv6:             "none",
				DERPPort:         httpPort,
				STUNPort:         stunPort,
				InsecureForTests: true,
			}},
		},
	}}
}

// Derper is an official `derper -dev` running in a node.
type Derper struct {
	Node *nettest.Node
	Proc *nettest.Proc
	// Map describes this relay; MapFile holds it as JSON for a control
	// server's --derp-map style flag.
	Map     *DERPMap
	MapFile string
}

// StartDerper runs `derper -dev` in node and waits until its HTTP port
// answers /generate_204 and its STUN port is bound. Clients must reach it
// over plain HTTP: start tailscaled with TS_DEBUG_USE_DERP_HTTP=1
// ([TailscaledConfig].DERPOverHTTP).
func StartDerper(t testing.TB, node *nettest.Node, bins TSBins) *Derper {
	t.Helper()
	d := &Derper{
		Node:    node,
		Map:     LabDERPMap(node.Addr, DERPDevHTTPPort, DERPSTUNPort),
		MapFile: filepath.Join(node.Lab().Dir(), "derpmap.json"),
	}
	if err := d.Map.WriteFile(d.MapFile); err != nil {
		t.Fatal(err)
	}
	d.Proc = node.Start(nettest.Cmd{Name: "derper", Args: []string{bins.Derper, "-dev"}})
	client := node.HTTPClient()
	nettest.WaitFor(t, 30*time.Second, func() error {
		if exited, err := d.Proc.Exited(); exited {
			return fmt.Errorf("derper exited (%v):\n%s", err, d.Proc.Tail(20))
		}
		if err := Get204(client, d.URL()+"/generate_204"); err != nil {
			return err
		}
		return UDPPortBound(node, DERPSTUNPort)
	})
	return d
}

// URL is the relay's base URL, http://<addr>:3340.
func (d *Derper) URL() string {
	return fmt.Sprintf("http://%s:%d", d.Node.Addr, DERPDevHTTPPort)
}

// Get204 GETs url and wants 204 No Content (derper's /generate_204).
func Get204(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("GET %s: %s, want 204", url, resp.Status)
	}
	return nil
}

// UDPPortBound returns nil when a socket in node is bound to UDP port, as
// listed by the namespace's /proc/net/udp or udp6 (derper binds [::]),
// and an error otherwise.
func UDPPortBound(node *nettest.Node, port int) error {
	out, err := node.Output("cat", "/proc/net/udp", "/proc/net/udp6")
	if err != nil {
		return err
	}
	want := fmt.Sprintf(":%04X ", port)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasSuffix(f[1]+" ", want) {
			return nil
		}
	}
	return fmt.Errorf("nothing bound to UDP port %d in %s", port, node.Name)
}
