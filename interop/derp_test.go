package interop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"weft.dev/weft/internal/nettest"
	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// The weft-derp scenarios run every relay `derper -dev` style: plain HTTP
// on 3340 and STUN on 3478, with the official clients on
// TS_DEBUG_USE_DERP_HTTP=1. That way weft-derp and the official derper are
// interchangeable nodes of one region (the mesh scenario mixes them) without
// per-relay certificates; the TLS path of the same relay package (meta
// certificate, fast start) is what TestEmbeddedRelayOfficialClients covers
// through weft-control's embedded relay.

// derpRegionID is the region of the standalone relays in these scenarios.
const derpRegionID = 910

// newRelayLab is a lab with two official tailscaled (ts1, ts2, not yet
// logged in) that cannot exchange UDP, so their traffic must be relayed.
// Relay nodes are added by the scenario.
func newRelayLab(t *testing.T) *Lab {
	t.Helper()
	lab := NewLab(t, LabConfig{Nodes: 2, NoDerper: true, Tailscaled: TailscaledConfig{DERPOverHTTP: true}})
	a, b := lab.Nodes[0], lab.Nodes[1]
	a.Node.BlockUDP(b.Node.Addr)
	b.Node.BlockUDP(a.Node.Addr)
	return lab
}

// writeDERPMap writes m into the lab directory for weft-control's
// --derp-map.
func writeDERPMap(t *testing.T, lab *Lab, m *DERPMap) string {
	t.Helper()
	path := filepath.Join(lab.Dir(), "relays-derpmap.json")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// joinTailnet creates a user and a key on ctl and brings both tailscaled up.
func joinTailnet(t *testing.T, lab *Lab, ctl *weftControl) {
	t.Helper()
	k := ctl.userKey("carol")
	upAll(t, ctl.URL, k, lab.Nodes[0], lab.Nodes[1])
}

// pingViaDERP wants `tailscale ping` from a to b to be answered through the
// relay region code, then an ICMP ping over the relayed tunnel.
func pingViaDERP(t *testing.T, a, b *Tailscaled, code string) {
	t.Helper()
	bIP, err := b.IPv4()
	if err != nil {
		t.Fatal(err)
	}
	nettest.WaitFor(t, 40*time.Second, func() error {
		out, err := a.Tailscale("ping", "-c", "3", "--until-direct=false", bIP.String())
		if err != nil || !strings.Contains(out, "via DERP("+code+")") {
			return fmt.Errorf("%s: tailscale ping %s not via DERP(%s): %v\n%s", a.Node.Name, bIP, code, err, out)
		}
		return nil
	})
	if out, err := a.Node.Exec("ping", "-c", "3", "-W", "3", bIP.String()); err != nil {
		t.Fatalf("%s: ping %s over the relayed tunnel: %v\n%s", a.Node.Name, bIP, err, out)
	}
}

// TestWeftDERPOfficialClients is issue 4's acceptance 1: a standalone
// weft-derp is the only relay of a weft-control tailnet; two official
// clients that cannot exchange UDP relay through it, and netcheck sees the
// region with a latency and the STUN-discovered address.
func TestWeftDERPOfficialClients(t *testing.T) {
	lab := newRelayLab(t)
	a, b := lab.Nodes[0], lab.Nodes[1]
	relayNode := lab.NewNode("wderp", lab.Net)
	r := StartRelay(t, relayNode, WeftDERP, RelayConfig{Bin: weft.Bins(t).Require(t, "weft-derp")})
	mapFile := writeDERPMap(t, lab, RegionMap(derpRegionID, "wderp", "weft-derp", relayNode.Addr))
	ctl := startWeftControl(t, lab, "--disable-derp", "--derp-map", mapFile)
	joinTailnet(t, lab, ctl)

	pingViaDERP(t, a, b, "wderp")
	pingViaDERP(t, b, a, "wderp")
	if n, err := r.Metric("derp_packets_sent_total"); err != nil || n == 0 {
		t.Errorf("weft-derp relayed %v packets (%v), want some", n, err)
	}

	out, err := a.Tailscale("netcheck")
	if err != nil {
		t.Fatalf("netcheck: %v\n%s", err, out)
	}
	for _, want := range []string{
		`\* IPv4: yes, ` + regexp.QuoteMeta(a.Node.Addr.String()) + `:\d+`,
		`\* Nearest DERP: weft-derp`,
		`- wderp: [0-9.]+(µs|ms|s) +\(weft-derp\)`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("netcheck output does not match %q:\n%s", want, out)
		}
	}
	t.Logf("netcheck:\n%s", out)
}

// TestWeftDERPMesh is issue 4's acceptance 3: one region of two meshed
// relays, client A on the first node and client B (which cannot reach the
// first node over TCP, so its client falls back to the second, as derphttp
// dialRegion does) on the second: packets cross the mesh both ways. Run
// with two weft-derps and with weft-derp meshed with the official derper.
func TestWeftDERPMesh(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  RelayKind // A's relay
		second RelayKind // B's relay
	}{
		{"weft-weft", WeftDERP, WeftDERP},
		{"weft-derper", WeftDERP, OfficialDERP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lab := newRelayLab(t)
			a, b := lab.Nodes[0], lab.Nodes[1]
			n1, n2 := lab.NewNode("relay1", lab.Net), lab.NewNode("relay2", lab.Net)
			bin := func(k RelayKind) string {
				if k == OfficialDERP {
					return lab.Bins.Derper
				}
				return weft.Bins(t).Require(t, "weft-derp")
			}
			meshKey := randomMeshKey(t)
			r1 := StartRelay(t, n1, tc.first, RelayConfig{Bin: bin(tc.first), MeshKey: meshKey, MeshWith: []netip.Addr{n2.Addr}})
			r2 := StartRelay(t, n2, tc.second, RelayConfig{Bin: bin(tc.second), MeshKey: meshKey, MeshWith: []netip.Addr{n1.Addr}})
			// B's TCP to the first node is refused at once (a reset, not a
			// silent drop), so its DERP client moves on to the second.
			if err := b.Node.NFT(fmt.Sprintf(`
table inet weft_derp_test {
	chain output {
		type filter hook output priority -10; policy accept;
		ip daddr %s tcp dport %d reject with tcp reset
	}
}
`, n1.Addr, DERPDevHTTPPort)); err != nil {
				t.Fatal(err)
			}
			mapFile := writeDERPMap(t, lab, RegionMap(derpRegionID, "mesh", "weft mesh", n1.Addr, n2.Addr))
			ctl := startWeftControl(t, lab, "--disable-derp", "--derp-map", mapFile)
			joinTailnet(t, lab, ctl)

			pingViaDERP(t, a, b, "mesh")
			pingViaDERP(t, b, a, "mesh")
			// Each weft relay both forwarded to and received from its mesh
			// peer: the packets really crossed relays.
			for _, r := range []*Relay{r1, r2} {
				if r.Kind != WeftDERP {
					continue
				}
				for _, m := range []string{"derp_packets_forwarded_out_total", "derp_packets_forwarded_in_total"} {
					if n, err := r.Metric(m); err != nil || n == 0 {
						t.Errorf("%s on %s = %v (%v), want > 0", m, r.Node.Name, n, err)
					}
				}
			}
		})
	}
}

func randomMeshKey(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestWeftDERPVerify is issue 4's acceptance 4: weft-derp admits only node
// keys weft-control knows (-verify-control-url, asking the admin API with
// an API key), and speaks derper's -verify-client-url admission JSON, the
// same as the official derper does against the same tiny controller.
func TestWeftDERPVerify(t *testing.T) {
	lab := newRelayLab(t)
	a, b := lab.Nodes[0], lab.Nodes[1]
	weftDERP := weft.Bins(t).Require(t, "weft-derp")
	// Go clients (the DERP test clients) dial from ts1's namespace.
	dialFrom := lab.NodeNS[0]
	dial := func(url string, k key.NodePrivate) (*derpclient.Client, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return derpclient.DialOptions(ctx, url, k, derpclient.Options{Dial: dialFrom.DialContext})
	}

	t.Run("control", func(t *testing.T) {
		relayNode := lab.NewNode("wderp", lab.Net)
		mapFile := writeDERPMap(t, lab, RegionMap(derpRegionID, "wderp", "weft-derp", relayNode.Addr))
		ctl := startWeftControl(t, lab, "--disable-derp", "--derp-map", mapFile)
		keyFile := filepath.Join(lab.Dir(), "derp-api-key")
		if err := os.WriteFile(keyFile, []byte(ctl.mustAdmin("apikeys", "create")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := StartRelay(t, relayNode, WeftDERP, RelayConfig{
			Bin:  weftDERP,
			Args: []string{"-verify-control-url", ctl.URL, "-verify-control-api-key-file", keyFile},
			Env:  []string{"SSL_CERT_FILE=" + lab.TLS.CAFile},
		})
		if c, err := dial(r.DERPURL(), key.NewNode()); err == nil {
			c.Close()
			t.Fatal("weft-derp admitted a node key weft-control does not know")
		}
		if n, err := r.Metric("derp_rejected_total"); err != nil || n != 1 {
			t.Errorf("derp_rejected_total = %v (%v), want 1", n, err)
		}
		// Registered nodes are admitted: the official clients relay.
		joinTailnet(t, lab, ctl)
		pingViaDERP(t, a, b, "wderp")
		if n, err := r.Metric("derp_rejected_total"); err != nil || n != 1 {
			t.Errorf("after the registered clients: derp_rejected_total = %v (%v), want still 1", n, err)
		}
	})

	t.Run("client-url", func(t *testing.T) {
		ctrl := startAdmissionController(t, lab.Control)
		url := fmt.Sprintf("http://%s/admit", ctrl.addr)
		for _, kind := range []RelayKind{WeftDERP, OfficialDERP} {
			t.Run(string(kind), func(t *testing.T) {
				bin := weftDERP
				if kind == OfficialDERP {
					bin = lab.Bins.Derper
				}
				r := StartRelay(t, lab.NewNode("hook-"+string(kind)[:4], lab.Net), kind, RelayConfig{
					Bin: bin, Args: []string{"-verify-client-url", url, "-verify-client-url-fail-open=false"},
				})
				k1, k2, denied := key.NewNode(), key.NewNode(), key.NewNode()
				ctrl.allow(k1.Public(), k2.Public())
				c1, err := dial(r.DERPURL(), k1)
				if err != nil {
					t.Fatalf("allowed client refused: %v", err)
				}
				defer c1.Close()
				c2, err := dial(r.DERPURL(), k2)
				if err != nil {
					t.Fatalf("allowed client refused: %v", err)
				}
				defer c2.Close()
				if c, err := dial(r.DERPURL(), denied); err == nil {
					c.Close()
					t.Fatal("client the controller denied was admitted")
				}
				exchange(t, c1, c2)

				want := map[string]any{"NodePublic": k1.Public().String(), "Source": dialFrom.Addr.String()}
				if d := cmp.Diff(want, ctrl.request(k1.Public())); d != "" {
					t.Errorf("admission request body (-want +got):\n%s", d)
				}
				if ctrl.request(denied.Public()) == nil {
					t.Errorf("denied client was never asked about")
				}
			})
		}
	})
}

// exchange sends one packet from c1 to c2 and wants it delivered.
func exchange(t *testing.T, c1, c2 *derpclient.Client) {
	t.Helper()
	if err := c1.Send(c2.PublicKey(), []byte("hello over weft")); err != nil {
		t.Fatal(err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c2.SetReadDeadline(time.Time{})
	for {
		m, err := c2.Recv()
		if err != nil {
			t.Fatalf("waiting for the packet: %v", err)
		}
		if m.Type == derp.FrameRecvPacket {
			if m.Source != c1.PublicKey() || string(m.Packet) != "hello over weft" {
				t.Fatalf("got packet %q from %v", m.Packet, m.Source)
			}
			return
		}
	}
}

// admissionController is a tiny derper -verify-client-url server: it
// records each request body by node key and allows the keys it was told to.
type admissionController struct {
	addr string

	mu sync.Mutex
	// Guarded by mu:
	allowed  map[string]bool
	requests map[string]map[string]any
}

func startAdmissionController(t *testing.T, node *nettest.Node) *admissionController {
	t.Helper()
	ln, err := node.Listen("tcp", node.Addr.String()+":8081")
	if err != nil {
		t.Fatal(err)
	}
	ac := &admissionController{addr: ln.Addr().String(), allowed: map[string]bool{}, requests: map[string]map[string]any{}}
	srv := &http.Server{Handler: http.HandlerFunc(ac.serve), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ac
}

func (ac *admissionController) serve(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if r.Method != http.MethodPost || json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&body) != nil {
		http.Error(w, "want POST of a JSON object", http.StatusBadRequest)
		return
	}
	k, _ := body["NodePublic"].(string)
	ac.mu.Lock()
	ac.requests[k] = body
	allow := ac.allowed[k]
	ac.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"Allow":%v}`, allow)
}

func (ac *admissionController) allow(ks ...key.NodePublic) {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	for _, k := range ks {
		ac.allowed[k.String()] = true
	}
}

// request returns the last body received about k, or nil.
func (ac *admissionController) request(k key.NodePublic) map[string]any {
	ac.mu.Lock()
	defer ac.mu.Unlock()
	return ac.requests[k.String()]
}
