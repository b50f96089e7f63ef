package daemon_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"weft.dev/weft/node/ipn"
)

func TestAuthKeyRegistrationAndStatus(t *testing.T) {
	c := newControl(t)
	a, b := newNode(t, "alpha"), newNode(t, "beta")
	a.up(c)
	b.up(c)
	waitFor(t, "alpha to see beta", func() bool { return len(a.status().Peer) == 1 })

	out := a.mustWeft("status")
	for _, want := range []string{"alpha", "beta", "alice@", "linux", "100.64."} {
		if !strings.Contains(out, want) {
			t.Errorf("weft status lacks %q:\n%s", want, out)
		}
	}
	ip4 := strings.TrimSpace(b.mustWeft("ip", "-4"))
	if !strings.HasPrefix(ip4, "100.64.") {
		t.Errorf("weft ip -4 = %q", ip4)
	}
	if got := strings.TrimSpace(a.mustWeft("ip", "-4", "beta")); got != ip4 {
		t.Errorf("weft ip -4 beta = %q, want %q", got, ip4)
	}
	who := a.mustWeft("whois", ip4)
	if !strings.Contains(who, "beta.weft.test") || !strings.Contains(who, "alice") {
		t.Errorf("whois:\n%s", who)
	}
}

// TestStatusJSONFieldNames checks that `weft status --json` keeps the field
// names of `tailscale status --json` (ipnstate.Status / PeerStatus).
func TestStatusJSONFieldNames(t *testing.T) {
	c := newControl(t)
	a, b := newNode(t, "alpha"), newNode(t, "beta")
	a.up(c)
	b.up(c)
	waitFor(t, "alpha to see beta online", func() bool {
		for _, p := range a.status().Peer {
			return p.Online
		}
		return false
	})
	var st map[string]any
	if err := json.Unmarshal([]byte(a.mustWeft("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"Version", "TUN", "BackendState", "AuthURL", "TailscaleIPs", "Self", "Health",
		"MagicDNSSuffix", "CurrentTailnet", "CertDomains", "Peer", "User", "ClientVersion"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status --json lacks %q", k)
		}
	}
	if st["BackendState"] != "Running" {
		t.Errorf("BackendState = %v", st["BackendState"])
	}
	peers := st["Peer"].(map[string]any)
	if len(peers) != 1 {
		t.Fatalf("Peer = %v", peers)
	}
	for k, v := range peers {
		if !strings.HasPrefix(k, "nodekey:") {
			t.Errorf("Peer key %q is not a node key", k)
		}
		p := v.(map[string]any)
		for _, f := range []string{"ID", "PublicKey", "HostName", "DNSName", "OS", "UserID", "TailscaleIPs",
			"AllowedIPs", "Addrs", "CurAddr", "Relay", "RxBytes", "TxBytes", "Created", "LastSeen", "Online",
			"ExitNode", "ExitNodeOption", "Active", "InNetworkMap", "InMagicSock", "InEngine", "LastHandshake"} {
			if _, ok := p[f]; !ok {
				t.Errorf("PeerStatus lacks %q", f)
			}
		}
		if p["HostName"] != "beta" || p["DNSName"] != "beta.weft.test." || p["Online"] != true {
			t.Errorf("peer = %v", p)
		}
	}
	tn := st["CurrentTailnet"].(map[string]any)
	if tn["MagicDNSSuffix"] != "weft.test" {
		t.Errorf("CurrentTailnet = %v", tn)
	}
}

func TestInteractiveRegistration(t *testing.T) {
	c := newControl(t)
	a := newNode(t, "gamma")
	type res struct {
		out, errout string
		err         error
	}
	done := make(chan res, 1)
	go func() {
		o, e, err := a.weft("up", "--login-server", c.url, "--hostname", "gamma", "--timeout", "20s")
		done <- res{o, e, err}
	}()
	var id string
	waitFor(t, "a pending login", func() bool {
		p := c.srv.State().PendingLogins()
		if len(p) == 1 {
			id = p[0].ID
		}
		return id != ""
	})
	// Control records the pending login before its answer (with the URL)
	// reaches the client, so poll.
	waitFor(t, "NeedsLogin with the server's AuthURL", func() bool {
		st := a.status()
		return st.BackendState == "NeedsLogin" && strings.HasSuffix(st.AuthURL, "/register/"+id)
	})
	if _, err := c.srv.State().ApproveLogin(context.Background(), id, "alice"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("up: %v\n%s", r.err, r.errout)
	}
	if !strings.Contains(r.errout, "To authenticate, visit:\n\n\t"+c.url+"/register/"+id) || !strings.Contains(r.errout, "Success.") {
		t.Errorf("up printed:\n%s", r.errout)
	}
	a.waitState(ipn.Running)
}

func TestRestartKeepsNodeWithoutReauth(t *testing.T) {
	c := newControl(t)
	a := newNode(t, "alpha")
	a.up(c)
	before := a.status()
	pending := len(c.srv.State().PendingLogins())
	a.restart()
	a.waitState(ipn.Running)
	after := a.status()
	if before.Self.ID != after.Self.ID || before.Self.PublicKey != after.Self.PublicKey ||
		before.TailscaleIPs[0] != after.TailscaleIPs[0] {
		t.Errorf("restart changed identity: %v %v %v -> %v %v %v", before.Self.ID, before.Self.PublicKey, before.TailscaleIPs,
			after.Self.ID, after.Self.PublicKey, after.TailscaleIPs)
	}
	if n := len(c.srv.State().Snapshot().Nodes); n != 1 {
		t.Errorf("server has %d nodes, want 1", n)
	}
	if len(c.srv.State().PendingLogins()) != pending {
		t.Error("restart started an interactive login")
	}
}

func TestLogoutThenUp(t *testing.T) {
	c := newControl(t)
	a := newNode(t, "alpha")
	a.up(c)
	id := a.status().Self.ID
	a.mustWeft("logout")
	a.waitState(ipn.NeedsLogin)
	out, _, err := a.weft("status")
	if err == nil || !strings.Contains(out, "Logged out.") {
		t.Errorf("status after logout: %v\n%s", err, out)
	}
	a.up(c)
	if got := a.status().Self.ID; got != id {
		t.Errorf("re-login gave node %s, want the same node %s", got, id)
	}
}
