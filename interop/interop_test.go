package interop

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"weft.dev/weft/internal/nettest"
)

// weft builds the module's commands once for this test binary.
var weft = NewWeftBuild()

func TestMain(m *testing.M) {
	code := m.Run()
	weft.Close()
	os.Exit(code)
}

func TestDERPMapWireShape(t *testing.T) {
	b, err := json.Marshal(LabDERPMap(netip.MustParseAddr("198.18.1.2"), 3340, 3478))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"Regions":{"900":{"RegionID":900,"RegionCode":"test","RegionName":"test","Nodes":[` +
		`{"Name":"900a","RegionID":900,"HostName":"198.18.1.2","IPv4":"198.18.1.2","IPv6":"none",` +
		`"DERPPort":3340,"STUNPort":3478,"InsecureForTests":true}]}}}`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("DERP map JSON (-want +got):\n%s", diff)
	}
}

func TestTLSServesIPSAN(t *testing.T) {
	dir := t.TempDir()
	cert, err := NewTLS(dir, "127.0.0.1", "control.test")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cert.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok"))
	})}
	go srv.Serve(ln)
	defer srv.Close()

	// Verification uses the CA file, as SSL_CERT_FILE would.
	pem, err := os.ReadFile(cert.CAFile)
	if err != nil || !strings.Contains(string(pem), "BEGIN CERTIFICATE") {
		t.Fatalf("CA file %s: %v %q", cert.CAFile, err, pem)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cert.ClientConfig()}}
	resp, err := c.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatalf("GET over TLS with the lab CA: %v", err)
	}
	resp.Body.Close()

	// The certificate names only its hosts.
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	conn, err := tls.Dial("tcp", "127.0.0.1:"+port, &tls.Config{RootCAs: cert.Pool, ServerName: "other.test"})
	if err == nil {
		conn.Close()
		t.Fatal("certificate accepted for a name it does not carry")
	}
}

func TestCacheDir(t *testing.T) {
	t.Setenv("WEFT_CACHE", "/x/cache")
	got, err := TailscaleBinDir("v1.102.5")
	if err != nil || got != "/x/cache/tailscale-v1.102.5/bin" {
		t.Errorf("TailscaleBinDir = %q, %v", got, err)
	}
	t.Setenv("WEFT_CACHE", "")
	t.Setenv("HOME", "/home/u")
	got, _ = TailscaleBinDir("v1.102.5")
	if got != filepath.FromSlash("/home/u/.cache/weft/tailscale-v1.102.5/bin") {
		t.Errorf("TailscaleBinDir without WEFT_CACHE = %q", got)
	}
}

// TestInstallTailscale installs (or finds in the cache) the official
// binaries; `make test` runs it alone first so the slow cold install shows
// its progress.
func TestInstallTailscale(t *testing.T) {
	nettest.RequireRoot(t)
	start := time.Now()
	bins := RequireTailscale(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := bins.Version(ctx)
	if err != nil || !strings.HasPrefix(v, strings.TrimPrefix(TailscaleVersion, "v")) {
		t.Fatalf("%s version = %q, %v; want %s", bins.Tailscale, v, err, TailscaleVersion)
	}
	t.Logf("official tailscale %s ready in %s (%v)", v, bins.Dir, time.Since(start).Round(time.Millisecond))
}

// TestOfficialDaemonsStart is the smoke test of the harness: official
// derper and two official tailscaled (TUN mode) in their own namespaces,
// each answering on its LocalAPI and able to reach the relay.
func TestOfficialDaemonsStart(t *testing.T) {
	nettest.RequireRoot(t)
	start := time.Now()
	lab := NewLab(t, LabConfig{Nodes: 2})
	t.Logf("lab ready in %v", time.Since(start).Round(time.Millisecond))

	for _, d := range lab.Nodes {
		st := d.WaitState(10*time.Second, "NeedsLogin", "Stopped")
		if !st.TUN {
			t.Errorf("%s: TUN = false, want kernel TUN mode", d.Node.Name)
		}
		if out, err := d.Node.Output("ip", "link", "show", "tailscale0"); err != nil {
			t.Errorf("%s: no tailscale0 in its namespace: %v %s", d.Node.Name, err, out)
		}
		if err := Get204(d.Node.HTTPClient(), lab.DERP.URL()+"/generate_204"); err != nil {
			t.Errorf("%s cannot reach the relay: %v", d.Node.Name, err)
		}
	}
	// A node behind a NAT router reaches the relay through it.
	_, inner := lab.NewNAT("nat1", lab.Net)
	natted := lab.AddTailscaled(lab.NewNode("ts3", inner))
	natted.WaitState(10*time.Second, "NeedsLogin", "Stopped")
	if err := Get204(natted.Node.HTTPClient(), lab.DERP.URL()+"/generate_204"); err != nil {
		t.Errorf("node behind NAT cannot reach the relay: %v", err)
	}
	// The control node can reach the relay too, and tailscale0 stayed out
	// of the host namespace.
	if err := Get204(lab.Control.HTTPClient(), lab.DERP.URL()+"/generate_204"); err != nil {
		t.Errorf("control cannot reach the relay: %v", err)
	}
	if _, err := net.InterfaceByName("tailscale0"); err == nil {
		t.Errorf("tailscale0 exists in the host namespace")
	}
}

// TestOfficialDaemonUserspace checks the netstack variant: no TUN device.
func TestOfficialDaemonUserspace(t *testing.T) {
	nettest.RequireRoot(t)
	lab := NewLab(t, LabConfig{Nodes: 1, Userspace: true, NoDerper: true})
	st := lab.Nodes[0].WaitState(10*time.Second, "NeedsLogin", "Stopped")
	if st.TUN {
		t.Errorf("TUN = true with --tun=%s", Userspace)
	}
	if out, err := lab.Nodes[0].Node.Output("ip", "-o", "link"); err != nil || strings.Contains(out, "tailscale0") {
		t.Errorf("links in userspace mode: %v\n%s", err, out)
	}
}

func TestWeftBuild(t *testing.T) {
	nettest.RequireRoot(t) // building every command is interop-pass work
	bins := weft.Bins(t)
	for _, name := range bins.Names() {
		p, _ := bins.Path(name)
		if fi, err := os.Stat(p); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s: %s not executable: %v", name, p, err)
		}
	}
	t.Logf("weft commands built: %v", bins.Names())
	entries, _ := os.ReadDir("../cmd")
	for _, e := range entries {
		if err := bins.Err(e.Name()); err != nil {
			t.Errorf("cmd/%s: %v", e.Name(), err)
		}
	}
}
