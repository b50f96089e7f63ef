package controlclient

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"weft.dev/weft/noise"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// fakeHeadscale plays what headscale v0.29 does (control.md §8, "verified,
// headscale"): /key with a zero legacy key, the early payload always,
// capver floor 113, register errors as 200 + Error, raw JSON frames when
// Compress is empty, filters only as PacketFilters, frames that change
// nothing, empty-bodied lite updates.
type fakeHeadscale struct {
	t   *testing.T
	key key.MachinePrivate

	mu       sync.Mutex
	mapReqs  []*ctrl.MapRequest
	regReqs  []*ctrl.RegisterRequest
	machines []key.MachinePublic
}

func (f *fakeHeadscale) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/key":
		json.NewEncoder(w).Encode(ctrl.OverTLSPublicKeyResponse{PublicKey: f.key.Public()})
	case "/ts2021":
		conn, err := noise.AcceptHTTP(r.Context(), w, r, noise.ServerConfig{PrivateKey: f.key, MinVersion: 113, EarlyPayload: true})
		if err != nil {
			return
		}
		f.mu.Lock()
		f.machines = append(f.machines, conn.PeerMachineKey())
		f.mu.Unlock()
		go (&http2.Server{}).ServeConn(conn, &http2.ServeConnOpts{Handler: http.HandlerFunc(f.serveNoise)})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeHeadscale) serveNoise(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch r.URL.Path {
	case "/machine/register":
		req, err := ctrl.DecodeRegisterRequest(body)
		if err != nil || req.Version < 113 {
			http.Error(w, "unsupported client version", 400)
			return
		}
		f.mu.Lock()
		f.regReqs = append(f.regReqs, req)
		f.mu.Unlock()
		if req.Auth == nil || req.Auth.AuthKey != "hskey-auth-good" {
			json.NewEncoder(w).Encode(ctrl.RegisterResponse{Error: "invalid authkey"})
			return
		}
		json.NewEncoder(w).Encode(ctrl.RegisterResponse{
			User: ctrl.User{ID: 1, DisplayName: "alice"}, Login: ctrl.Login{ID: 1, LoginName: "alice"}, MachineAuthorized: true,
		})
	case "/machine/map":
		req, err := ctrl.DecodeMapRequest(body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.mu.Lock()
		f.mapReqs = append(f.mapReqs, req)
		f.mu.Unlock()
		if !req.Stream {
			return // headscale: 200 with an empty body
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		now := time.Now().UTC()
		self := &ctrl.Node{ID: 1, StableID: "1", Name: "n1.hs.test.", User: 1, Key: req.NodeKey,
			Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.1/32")}, MachineAuthorized: true, Online: ptr(true),
			CapMap: map[string][]json.RawMessage{"https://tailscale.com/cap/is-admin": nil}}
		peer := &ctrl.Node{ID: 2, StableID: "2", Name: "n2.hs.test.", User: 1, Key: key.NewNode().Public(),
			Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32")}, HomeDERP: 999, Online: ptr(true), MachineAuthorized: true}
		frames := []*ctrl.MapResponse{
			{KeepAlive: true},
			{Node: self, DERPMap: &ctrl.DERPMap{Regions: map[int]*ctrl.DERPRegion{999: {RegionID: 999, RegionCode: "headscale"}}},
				DNSConfig: &ctrl.DNSConfig{}, Domain: "hs.test", UserProfiles: []ctrl.UserProfile{{ID: 1, LoginName: "alice"}},
				PacketFilters: map[string][]ctrl.FilterRule{"base": ctrl.AllowAll()}, Peers: []*ctrl.Node{peer}, ControlTime: &now},
			{Node: self, ControlTime: &now},
			{ControlTime: &now},
			{PeersChangedPatch: []*ctrl.PeerChange{{NodeID: 2, Online: ptr(false)}}},
		}
		for _, m := range frames {
			js, _ := json.Marshal(m)
			if req.Compress != "" {
				f.t.Errorf("client asked for Compress %q", req.Compress)
			}
			var hdr [4]byte
			binary.LittleEndian.PutUint32(hdr[:], uint32(len(js)))
			w.Write(hdr[:])
			w.Write(js)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	default:
		http.Error(w, "Not implemented yet", 501)
	}
}

func TestAgainstHeadscaleStyleServer(t *testing.T) {
	f := &fakeHeadscale{t: t, key: key.NewMachine()}
	hs := httptest.NewServer(f)
	defer hs.Close()

	statuses := make(chan Status, 100)
	machine := key.NewMachine()
	c, err := New(Options{
		ServerURL: hs.URL, MachineKey: machine, Hostinfo: &ctrl.Hostinfo{Hostname: "n1"},
		NoCompression: true, MaxBackoff: 100 * time.Millisecond,
		Observer: ObserverFunc(func(s Status) { statuses <- s }),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Start()
	defer c.Shutdown()

	c.Login(LoginOpts{AuthKey: "wrong"})
	s := next(t, statuses, func(s Status) bool { return s.Err != nil })
	if !s.LoginFailed || s.Err.Error() != "invalid authkey" {
		t.Fatalf("bad key: %+v", s)
	}

	c.Login(LoginOpts{AuthKey: "hskey-auth-good"})
	s = next(t, statuses, func(s Status) bool { return s.LoginFinished })
	if s.Persist == nil || s.Persist.PrivateNodeKey.IsZero() || s.Persist.UserProfile.LoginName != "alice" {
		t.Fatalf("login: %+v", s)
	}
	s = next(t, statuses, func(s Status) bool { return s.NetMap != nil })
	nm := s.NetMap
	if len(nm.PacketFilter) != 1 || nm.PacketFilter[0].SrcIPs[0] != "*" {
		t.Errorf("filter from PacketFilters = %+v", nm.PacketFilter)
	}
	if nm.Domain != "hs.test" || len(nm.Peers) != 1 || nm.Peers[0].HomeDERP != 999 || nm.SelfNode.CapMap == nil {
		t.Errorf("netmap = %+v", nm)
	}
	s = next(t, statuses, func(s Status) bool {
		return s.NetMap != nil && len(s.NetMap.Peers) == 1 && s.NetMap.Peers[0].Online != nil && !*s.NetMap.Peers[0].Online
	})
	if len(c.EarlyPayload()) == 0 {
		t.Error("the early payload was not consumed")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.regReqs {
		if r.Version < 113 || r.Hostinfo == nil || r.Hostinfo.Hostname != "n1" {
			t.Errorf("register request: %+v", r)
		}
	}
	for _, r := range f.mapReqs {
		if !r.Stream && !r.OmitPeers {
			t.Error("sent Stream:false, OmitPeers:false (headscale answers it with an empty body)")
		}
	}
	for _, m := range f.machines {
		if m != machine.Public() {
			t.Error("wrong machine key")
		}
	}
}

func next(t *testing.T, ch chan Status, cond func(Status) bool) Status {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s := <-ch:
			if cond(s) {
				return s
			}
		case <-timeout:
			t.Fatal("timed out waiting for a status")
		}
	}
}

// TestLogoutSendsUnix123 checks the logout register (control.md §4.3).
func TestLogoutSendsUnix123(t *testing.T) {
	f := &fakeHeadscale{t: t, key: key.NewMachine()}
	hs := httptest.NewServer(f)
	defer hs.Close()
	statuses := make(chan Status, 100)
	c, _ := New(Options{ServerURL: hs.URL, MachineKey: key.NewMachine(), NoCompression: true,
		Observer: ObserverFunc(func(s Status) { statuses <- s })})
	c.Start()
	defer c.Shutdown()
	c.Login(LoginOpts{AuthKey: "hskey-auth-good"})
	s := next(t, statuses, func(s Status) bool { return s.LoginFinished })
	nk := s.Persist.PrivateNodeKey.Public()
	if err := c.Logout(context.Background()); err != nil {
		t.Fatal(err)
	}
	next(t, statuses, func(s Status) bool { return s.LoggedOut })
	f.mu.Lock()
	defer f.mu.Unlock()
	last := f.regReqs[len(f.regReqs)-1]
	if last.NodeKey != nk || !last.Expiry.Equal(time.Unix(123, 0)) {
		t.Errorf("logout request: key %v expiry %v", last.NodeKey, last.Expiry)
	}
}
