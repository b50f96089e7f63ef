package server

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"weft.dev/weft/control/store"
	"weft.dev/weft/wire/ctrl"
)

func keyOf(t *testing.T, s *Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/key?v=142", nil))
	var k ctrl.OverTLSPublicKeyResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &k); err != nil {
		t.Fatalf("/key: %v: %s", err, rec.Body)
	}
	return k.PublicKey.String()
}

// TestKeysSurviveRestartAndDERPMap: the Noise key (which running clients
// remember) is the same after a restart on the same store, and the DERP map
// carries the embedded region at the server URL.
func TestKeysSurviveRestartAndDERPMap(t *testing.T) {
	ctx := context.Background()
	db := store.NewMemory()
	cfg := Config{Store: db, StateDir: t.TempDir(), ServerURL: "https://ctl.example.com:8443", STUNListen: ":3479"}
	s1, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	k1 := keyOf(t, s1)
	r := s1.derpMap.Regions[embeddedRegionID]
	if r == nil || r.Nodes[0].HostName != "ctl.example.com" || r.Nodes[0].DERPPort != 8443 || r.Nodes[0].STUNPort != 3479 {
		t.Fatalf("embedded region = %+v", r)
	}
	s2, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if k2 := keyOf(t, s2); k1 != k2 || !strings.HasPrefix(k1, "mkey:") {
		t.Fatalf("Noise key changed across restart: %s -> %s", k1, k2)
	}
	cfg.DisableDERP = true
	cfg.DERPMapFile = "/nonexistent/derp.json"
	if _, err := New(ctx, cfg); err == nil || !strings.Contains(err.Error(), "--derp-map") {
		t.Fatalf("missing DERP map file: %v", err)
	}
}
