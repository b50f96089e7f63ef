package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
)

// weftControl is a weft-control running in the lab's control node over TLS
// on port 443 (the official client retries only HTTPS on 443 after a failed
// Noise dial, control.md §2.1), with its admin socket in StateDir.
type weftControl struct {
	t        *testing.T
	lab      *Lab
	bin      string
	args     []string
	StateDir string
	URL      string
	Proc     *nettest.Proc
}

func startWeftControl(t *testing.T, lab *Lab, extra ...string) *weftControl {
	t.Helper()
	c := &weftControl{
		t: t, lab: lab,
		bin:      weft.Bins(t).Require(t, "weft-control"),
		StateDir: filepath.Join(lab.Dir(), "weft-control"),
		URL:      "https://" + lab.Control.Addr.String(),
	}
	c.args = append([]string{c.bin,
		"--listen", lab.Control.Addr.String() + ":443",
		"--server-url", c.URL,
		"--state-dir", c.StateDir,
		"--tls-cert", lab.TLS.CertFile, "--tls-key", lab.TLS.KeyFile,
		"--base-domain", "weft.test",
		"--log-level", "debug",
	}, extra...)
	c.start()
	return c
}

func (c *weftControl) start() {
	c.t.Helper()
	c.Proc = c.lab.Control.Start(nettest.Cmd{Name: "weft-control", Args: c.args})
	nettest.WaitFor(c.t, 15*time.Second, func() error {
		_, err := c.admin("users", "list")
		return err
	})
}

// kill9 kills the server without letting it shut down.
func (c *weftControl) kill9() {
	c.t.Helper()
	if err := c.Proc.Signal(syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	<-c.Proc.Done()
}

// admin runs an admin subcommand against the running server.
func (c *weftControl) admin(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{"--state-dir", c.StateDir}, args...)
	out, err := exec.CommandContext(ctx, c.bin, full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("weft-control %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

func (c *weftControl) mustAdmin(args ...string) string {
	c.t.Helper()
	out, err := c.admin(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

// userKey creates user and returns a reusable pre-auth key for it.
func (c *weftControl) userKey(user string) string {
	c.t.Helper()
	c.mustAdmin("users", "create", user)
	return c.mustAdmin("keys", "create", "--user", user, "--reusable")
}

type adminNode struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Hostname string `json:"hostname"`
	IPv4     string `json:"ipv4"`
	IPv6     string `json:"ipv6"`
	Online   bool   `json:"online"`
}

func (c *weftControl) nodes() []adminNode {
	c.t.Helper()
	var ns []adminNode
	if err := json.Unmarshal([]byte(c.mustAdmin("nodes", "list", "--json")), &ns); err != nil {
		c.t.Fatal(err)
	}
	return ns
}

// peerByHost finds a peer in a status by host name.
func peerByHost(st *Status, host string) *PeerStatus {
	for _, p := range st.Peer {
		if p.HostName == host {
			return p
		}
	}
	return nil
}

func upAll(t *testing.T, url, key string, ds ...*Tailscaled) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(ds))
	for i, d := range ds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Up(url, key)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: tailscale up: %v", ds[i].Node.Name, err)
		}
	}
	for _, d := range ds {
		d.WaitRunning(30 * time.Second)
	}
}

// TestControlOfficialClients is issue 3's acceptance with official
// tailscaled v1.102.5 in TUN mode, relayed by an official derper: join with
// an auth key, see each other, ping, ip, whois; interactive login; changes
// (rename, set-ip, expire, delete) reaching clients within 2 s; refused
// keys with clear messages; and kill -9 of the server with clients coming
// back on their own.
func TestControlOfficialClients(t *testing.T) {
	lab := NewLab(t, LabConfig{Nodes: 4})
	ctl := startWeftControl(t, lab, "--disable-derp", "--derp-map", lab.DERP.MapFile)
	ctl.mustAdmin("users", "create", "alice")
	key := ctl.mustAdmin("keys", "create", "--user", "alice", "--reusable", "--expiry", "1h")
	a, b, c := lab.Nodes[0], lab.Nodes[1], lab.Nodes[2]

	upAll(t, ctl.URL, key, a, b)

	// 1. Both see each other online with IPv4 and IPv6, ping works.
	var bIP netip.Addr
	nettest.WaitFor(t, 10*time.Second, func() error {
		st, err := a.StatusJSON()
		if err != nil {
			return err
		}
		p := peerByHost(st, b.Node.Name)
		if p == nil || !p.Online || len(p.TailscaleIPs) != 2 {
			return fmt.Errorf("a's view of b: %+v", p)
		}
		bIP = p.TailscaleIPs[0]
		if !bIP.Is4() || !p.TailscaleIPs[1].Is6() {
			return fmt.Errorf("b's addresses %v, want v4 then v6", p.TailscaleIPs)
		}
		return nil
	})
	st, err := b.StatusJSON()
	if err != nil {
		t.Fatal(err)
	}
	if p := peerByHost(st, a.Node.Name); p == nil || !p.Online {
		t.Fatalf("b's view of a: %+v", p)
	}
	if out, err := a.Tailscale("ping", "-c", "10", bIP.String()); err != nil || !strings.Contains(out, "pong from") {
		t.Fatalf("tailscale ping: %v\n%s", err, out)
	}
	if out, err := a.Node.Exec("ping", "-c", "3", "-W", "2", bIP.String()); err != nil {
		t.Fatalf("ping over the tunnel: %v\n%s", err, out)
	}
	if out, err := a.Tailscale("ip", "-4", b.Node.Name); err != nil || strings.TrimSpace(out) != bIP.String() {
		t.Fatalf("tailscale ip -4 %s = %q, %v; want %s", b.Node.Name, out, err, bIP)
	}
	if out, err := a.Tailscale("whois", bIP.String()); err != nil || !strings.Contains(out, b.Node.Name) || !strings.Contains(out, "alice") {
		t.Fatalf("tailscale whois: %v\n%s", err, out)
	}

	// 2. Interactive login: up prints the server URL, an admin approves.
	upDone := make(chan error, 1)
	var upOut string
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		var err error
		upOut, err = c.TailscaleContext(ctx, "up", "--login-server="+ctl.URL, "--accept-dns=false", "--hostname="+c.Node.Name, "--timeout=80s")
		upDone <- err
	}()
	var loginID string
	re := regexp.MustCompile(regexp.QuoteMeta(ctl.URL) + `/register/([0-9a-f]+)`)
	nettest.WaitFor(t, 30*time.Second, func() error {
		st, err := c.StatusJSON()
		if err != nil {
			return err
		}
		m := re.FindStringSubmatch(st.AuthURL)
		if m == nil {
			return fmt.Errorf("AuthURL %q does not point at the server", st.AuthURL)
		}
		loginID = m[1]
		return nil
	})
	ctl.mustAdmin("nodes", "register", "--user", "alice", loginID)
	select {
	case err := <-upDone:
		if err != nil {
			t.Fatalf("interactive up: %v\n%s", err, upOut)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("interactive up did not finish after approval")
	}
	c.WaitRunning(20 * time.Second)

	// 3. Changes reach clients within 2 s.
	ctl.mustAdmin("nodes", "rename", b.Node.Name, "beta")
	nettest.WaitFor(t, 2*time.Second, func() error {
		st, err := a.StatusJSON()
		if err != nil {
			return err
		}
		for _, p := range st.Peer {
			if p.DNSName == "beta.weft.test." {
				return nil
			}
		}
		return fmt.Errorf("no peer named beta.weft.test. yet")
	})
	ctl.mustAdmin("nodes", "set-ip", "beta", "100.64.7.7")
	nettest.WaitFor(t, 2*time.Second, func() error {
		ip, err := b.IPv4()
		if err != nil || ip.String() != "100.64.7.7" {
			return fmt.Errorf("b's IPv4 %v %v, want 100.64.7.7", ip, err)
		}
		return nil
	})
	ctl.mustAdmin("nodes", "expire", c.Node.Name)
	c.WaitState(5*time.Second, "NeedsLogin")

	ctl.mustAdmin("nodes", "delete", "beta", "--force")
	nettest.WaitFor(t, 2*time.Second, func() error {
		st, err := a.StatusJSON()
		if err != nil {
			return err
		}
		if p := peerByHost(st, b.Node.Name); p != nil {
			return fmt.Errorf("a still lists deleted b")
		}
		return nil
	})
	b.WaitState(5*time.Second, "NeedsLogin")

	// 5. Refused keys come back with a clear message in `tailscale up`.
	single := ctl.mustAdmin("keys", "create", "--user", "alice")
	if err := c.Up(ctl.URL, single, "--force-reauth"); err != nil {
		t.Fatalf("up with a fresh single-use key: %v", err)
	}
	c.WaitRunning(20 * time.Second)
	// Each refused key on a daemon of its own: a daemon may show its
	// previous login error again for a later attempt (seen with 1.102.5).
	for _, tc := range []struct {
		d         *Tailscaled
		key, want string
	}{
		{b, single, "already used"},
		{lab.Nodes[3], "weft-auth-000000000000-" + strings.Repeat("0", 48), "invalid auth key"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := tc.d.TailscaleContext(ctx, "up", "--login-server="+ctl.URL, "--accept-dns=false", "--hostname="+tc.d.Node.Name, "--timeout=30s", "--force-reauth", "--auth-key="+tc.key)
		cancel()
		if err == nil || !strings.Contains(out+err.Error(), tc.want) {
			t.Errorf("up with key %q: err %v, output does not say %q:\n%s", tc.key, err, tc.want, out)
		}
	}

	// 4. kill -9: acknowledged nodes keep their addresses and clients
	// reconnect without re-authentication.
	before := ctl.nodes()
	aIP, err := a.IPv4()
	if err != nil {
		t.Fatal(err)
	}
	ctl.kill9()
	ctl.start()
	after := ctl.nodes()
	if len(after) != len(before) {
		t.Fatalf("nodes after kill -9: %d, before %d", len(after), len(before))
	}
	for i := range before {
		if before[i].ID != after[i].ID || before[i].IPv4 != after[i].IPv4 || before[i].IPv6 != after[i].IPv6 {
			t.Errorf("node changed across kill -9: %+v -> %+v", before[i], after[i])
		}
	}
	nettest.WaitFor(t, 60*time.Second, func() error {
		st, err := a.StatusJSON()
		if err != nil {
			return err
		}
		if st.BackendState != "Running" || st.AuthURL != "" {
			return fmt.Errorf("a after restart: %s %q", st.BackendState, st.AuthURL)
		}
		if p := peerByHost(st, c.Node.Name); p == nil || !p.Online {
			return fmt.Errorf("a does not see c online again")
		}
		return nil
	})
	if ip, _ := a.IPv4(); ip != aIP {
		t.Errorf("a's address changed across the restart: %v -> %v", aIP, ip)
	}
}

// TestEmbeddedRelayOfficialClients is issue 4's acceptance 2: no external
// derper at all. weft-control serves DERP on its TLS listener and STUN on
// UDP 3478; two official clients with UDP between them blocked relay
// through it, and netcheck sees the region.
func TestEmbeddedRelayOfficialClients(t *testing.T) {
	lab := NewLab(t, LabConfig{Nodes: 2, NoDerper: true})
	ctl := startWeftControl(t, lab)
	key := ctl.userKey("bob")
	a, b := lab.Nodes[0], lab.Nodes[1]
	a.Node.BlockUDP(b.Node.Addr)
	b.Node.BlockUDP(a.Node.Addr)
	upAll(t, ctl.URL, key, a, b)

	bIP, err := b.IPv4()
	if err != nil {
		t.Fatal(err)
	}
	out, err := a.Tailscale("ping", "-c", "5", "--until-direct=false", bIP.String())
	if err != nil || !strings.Contains(out, "via DERP(weft)") {
		t.Fatalf("tailscale ping did not go via the embedded relay: %v\n%s", err, out)
	}
	if out, err := a.Node.Exec("ping", "-c", "3", "-W", "3", bIP.String()); err != nil {
		t.Fatalf("ping over the relayed tunnel: %v\n%s", err, out)
	}
	out, err = a.Tailscale("netcheck")
	if err != nil {
		t.Fatalf("netcheck: %v\n%s", err, out)
	}
	if !strings.Contains(out, "weft") || !strings.Contains(out, a.Node.Addr.String()) {
		t.Errorf("netcheck does not show the weft region and the STUN-discovered address %s:\n%s", a.Node.Addr, out)
	}
	t.Logf("netcheck:\n%s", out)
}
