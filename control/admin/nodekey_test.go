package admin

import (
	"context"
	"testing"

	"weft.dev/weft/wire/key"
)

func TestNodeKeyLookup(t *testing.T) {
	f := newFixture(t, false)
	l := f.laptop
	var got NodeKeyLookup
	f.call(t, "GET", "/api/v1/nodekeys/"+l.NodeKey.String(), "", 200, &got)
	want := NodeKeyLookup{NodeKey: l.NodeKey.String(), Node: l.ID, Name: "laptop", Allow: true}
	if d := diff(want, got); d != "" {
		t.Errorf("lookup of a registered key (-want +got):\n%s", d)
	}

	if _, err := f.st.Expire(context.Background(), l.ID, t0); err != nil {
		t.Fatal(err)
	}
	f.call(t, "GET", "/api/v1/nodekeys/"+l.NodeKey.String(), "", 200, &got)
	want.Expired, want.Allow = true, false
	if d := diff(want, got); d != "" {
		t.Errorf("lookup of an expired key (-want +got):\n%s", d)
	}

	runErrCases(t, f, []errCase{
		{"unknown key", "GET", "/api/v1/nodekeys/" + key.NewNode().Public().String(), "", 404, "not registered"},
		{"bad key", "GET", "/api/v1/nodekeys/nodekey:zz", "", 400, "bad node key"},
		{"write", "POST", "/api/v1/nodekeys/" + l.NodeKey.String(), "", 405, "GET"},
	})
}

func TestNodeKeyLookupNeedsAPIKey(t *testing.T) {
	f := newFixture(t, true)
	if code, _ := f.do(t, "GET", "/api/v1/nodekeys/"+f.laptop.NodeKey.String(), ""); code != 401 {
		t.Errorf("lookup without an API key: status %d, want 401", code)
	}
}
