package ipn

import (
	"encoding/json"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMaskedPrefsApply(t *testing.T) {
	cur := NewPrefs()
	cur.ControlURL = "http://a"
	cur.Hostname = "keep"
	mp := &MaskedPrefs{Prefs: Prefs{WantRunning: true, ShieldsUp: true, Hostname: "ignored",
		AdvertiseRoutes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		WantRunningSet: true, AdvertiseRoutesSet: true}
	got := mp.ApplyTo(cur)
	want := cur.Clone()
	want.WantRunning = true
	want.AdvertiseRoutes = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	if d := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("ApplyTo (-want +got):\n%s", d)
	}
	if mp.IsEmpty() || (&MaskedPrefs{}).IsEmpty() == false {
		t.Error("IsEmpty")
	}
}

func TestPrefsJSONNames(t *testing.T) {
	b, _ := json.Marshal(NewPrefs())
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"ControlURL", "RouteAll", "ExitNodeID", "ExitNodeIP", "CorpDNS", "WantRunning", "LoggedOut",
		"ShieldsUp", "AdvertiseTags", "Hostname", "AdvertiseRoutes", "NoSNAT", "NetfilterMode", "RunSSH"} {
		if _, ok := m[k]; !ok {
			t.Errorf("Prefs JSON lacks %q (ipn.Prefs name)", k)
		}
	}
	for s := NoState; s <= Running; s++ {
		if p, err := ParseState(s.String()); err != nil || p != s {
			t.Errorf("state %d round trip: %v %v", s, p, err)
		}
	}
}
