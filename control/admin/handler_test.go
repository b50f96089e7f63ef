package admin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	f := newFixture(t, true)
	ctx := context.Background()
	good, k, err := f.st.CreateAPIKey(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := f.st.CreateAPIKey(ctx, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(2 * time.Minute)
	tests := []struct {
		name, auth string
		status     int
		contains   string
	}{
		{"missing", "", 401, "missing API key"},
		{"wrong scheme", "Basic " + good, 401, "malformed Authorization header"},
		{"not a key", "Bearer nope", 401, "invalid api key"},
		{"wrong secret", "Bearer " + good[:len(good)-4] + "0000", 401, "invalid api key"},
		{"expired", "Bearer " + old, 401, "api key expired"},
		{"good", "Bearer " + good, 200, ""},
		{"good lower-case scheme", "bearer " + good, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.auth != "" {
				hdr = []string{"Authorization", tc.auth}
			}
			code, body := f.do(t, "GET", "/api/v1/users", "", hdr...)
			if code != tc.status || !strings.Contains(body, tc.contains) {
				t.Fatalf("got %d %s, want %d containing %q", code, body, tc.status, tc.contains)
			}
			if code == 401 && !strings.Contains(body, "weft-control apikeys create") && !strings.Contains(body, "Bearer weft-api-") {
				t.Errorf("401 %s does not say what to do next", body)
			}
		})
	}
	keys, err := f.db.ListAPIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := keys[0]; got.ID != k.ID || !got.LastUsed.Equal(f.clk.Now()) {
		t.Errorf("after use, key %d LastUsed = %v, want %v", got.ID, got.LastUsed, f.clk.Now())
	}

	// The unix socket handler needs no key.
	open := newFixture(t, false)
	if code, body := open.do(t, "GET", "/api/v1/users", ""); code != 200 {
		t.Fatalf("without RequireAPIKey: %d %s", code, body)
	}
}

func TestRouting(t *testing.T) {
	f := newFixture(t, false)
	runErrCases(t, f, []errCase{
		{"unknown route", "GET", "/api/v1/nope", "", 404, "no admin API route GET /api/v1/nope"},
		{"wrong method", "PUT", "/api/v1/users", "", 405, "use GET, HEAD, POST"},
		{"body too large", "POST", "/api/v1/users", `{"name":"` + strings.Repeat("a", maxBody) + `"}`, 413, "larger than 65536 bytes"},
		{"trailing data", "POST", "/api/v1/users", `{"name":"a"} {}`, 400, "unexpected data after the JSON object"},
	})
}

func TestUsers(t *testing.T) {
	f := newFixture(t, false)
	var created User
	f.call(t, "POST", "/api/v1/users", `{"name":"carol","display_name":"Carol C","email":"c@example.com"}`, 201, &created)
	want := User{ID: created.ID, Name: "carol", DisplayName: "Carol C", Email: "c@example.com", Created: t0}
	if d := diff(want, created); d != "" {
		t.Errorf("created user (-want +got):\n%s", d)
	}
	var users []User
	f.call(t, "GET", "/api/v1/users", "", 200, &users)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if d := diff([]string{"alice", "bob", "carol"}, names); d != "" {
		t.Errorf("user names (-want +got):\n%s", d)
	}
	f.call(t, "DELETE", "/api/v1/users/carol", "", 204, nil)
	if _, ok := f.st.UserByName("carol"); ok {
		t.Error("carol still exists after DELETE")
	}
	runErrCases(t, f, []errCase{
		{"duplicate", "POST", "/api/v1/users", `{"name":"alice"}`, 409, `user "alice" already exists`},
		{"invalid name", "POST", "/api/v1/users", `{"name":"a b"}`, 400, "without spaces"},
		{"bad json", "POST", "/api/v1/users", `{"name":`, 400, "bad request body"},
		{"unknown field", "POST", "/api/v1/users", `{"name":"x","admin":true}`, 400, `unknown field "admin"`},
		{"empty body", "POST", "/api/v1/users", ``, 400, "request body is empty"},
		{"delete unknown", "DELETE", "/api/v1/users/zed", "", 404, `no user "zed"`},
		{"delete owner", "DELETE", "/api/v1/users/alice", "", 409, "delete them first"},
	})
}

func TestPreAuthKeys(t *testing.T) {
	f := newFixture(t, false)
	ctx := context.Background()
	var got CreatedPreAuthKey
	f.call(t, "POST", "/api/v1/keys", `{"user":"alice","reusable":true,"tags":["tag:web"],"expiry":"2d"}`, 201, &got)
	if !strings.HasPrefix(got.Key, "weft-auth-"+got.Prefix+"-") {
		t.Fatalf("key %q does not start with weft-auth-%s-", got.Key, got.Prefix)
	}
	want := PreAuthKey{
		ID: got.ID, Prefix: got.Prefix, User: "alice", Reusable: true, Tags: []string{"tag:web"},
		Expiration: t0.Add(48 * time.Hour), Created: t0,
	}
	if d := diff(want, got.PreAuthKey); d != "" {
		t.Errorf("created key (-want +got):\n%s", d)
	}
	if _, err := f.st.CheckPreAuthKey(ctx, got.Key); err != nil {
		t.Fatalf("created key does not check: %v", err)
	}
	var other CreatedPreAuthKey
	f.call(t, "POST", "/api/v1/keys", `{"user":"bob"}`, 201, &other)

	code, body := f.do(t, "GET", "/api/v1/keys", "")
	if code != 200 || strings.Contains(body, got.Key) || strings.Contains(body, `"key"`) {
		t.Fatalf("listing %d shows secrets or failed: %s", code, body)
	}
	var alices []PreAuthKey
	f.call(t, "GET", "/api/v1/keys?user=alice", "", 200, &alices)
	if d := diff([]PreAuthKey{want}, alices); d != "" {
		t.Errorf("alice's keys (-want +got):\n%s", d)
	}

	var expiredKey PreAuthKey
	f.call(t, "POST", "/api/v1/keys/"+got.Prefix+"/expire", "", 200, &expiredKey)
	if !expiredKey.Expired || !expiredKey.Expiration.Equal(t0) {
		t.Errorf("expired key = %+v, want Expired at %v", expiredKey, t0)
	}
	if _, err := f.st.CheckPreAuthKey(ctx, got.Key); err == nil {
		t.Error("expired key still checks")
	}
	// The whole key text works where a prefix is expected.
	f.call(t, "POST", "/api/v1/keys/"+other.Key+"/expire", "", 200, nil)

	runErrCases(t, f, []errCase{
		{"unknown user", "POST", "/api/v1/keys", `{"user":"zed"}`, 404, "weft-control users create zed"},
		{"no user", "POST", "/api/v1/keys", `{}`, 400, `missing "user"`},
		{"bad expiry", "POST", "/api/v1/keys", `{"user":"alice","expiry":"soon"}`, 400, "invalid expiry"},
		{"negative expiry", "POST", "/api/v1/keys", `{"user":"alice","expiry":"-1h"}`, 400, "invalid expiry"},
		{"bad tag", "POST", "/api/v1/keys", `{"user":"alice","tags":["web"]}`, 400, "tags look like tag:server"},
		{"unknown field", "POST", "/api/v1/keys", `{"user":"alice","uses":3}`, 400, `unknown field "uses"`},
		{"expire unknown", "POST", "/api/v1/keys/0123456789ab/expire", "", 404, "weft-control keys list"},
		{"list unknown user", "GET", "/api/v1/keys?user=zed", "", 404, `no user "zed"`},
	})
}

func TestAPIKeys(t *testing.T) {
	f := newFixture(t, false)
	var got CreatedAPIKey
	f.call(t, "POST", "/api/v1/apikeys", `{"expiry":"24h"}`, 201, &got)
	if _, err := f.st.CheckAPIKey(context.Background(), got.Key); err != nil {
		t.Fatalf("created API key does not check: %v", err)
	}
	want := APIKey{ID: got.ID, Prefix: got.Prefix, Expiration: t0.Add(24 * time.Hour), Created: t0}
	if d := diff(want, got.APIKey); d != "" {
		t.Errorf("created API key (-want +got):\n%s", d)
	}
	var def CreatedAPIKey
	f.call(t, "POST", "/api/v1/apikeys", "", 201, &def) // no body: defaults
	if !def.Expiration.Equal(t0.Add(90 * 24 * time.Hour)) {
		t.Errorf("default expiry %v, want 90 days", def.Expiration)
	}
	code, body := f.do(t, "GET", "/api/v1/apikeys", "")
	if code != 200 || strings.Contains(body, got.Key) {
		t.Fatalf("listing %d shows the secret or failed: %s", code, body)
	}
	var keys []APIKey
	if err := json.Unmarshal([]byte(body), &keys); err != nil || len(keys) != 2 {
		t.Fatalf("listing %s: %v", body, err)
	}
	var exp APIKey
	f.call(t, "POST", "/api/v1/apikeys/"+got.Prefix+"/expire", "", 200, &exp)
	if !exp.Expired {
		t.Errorf("expired API key = %+v, want Expired", exp)
	}
	if _, err := f.st.CheckAPIKey(context.Background(), got.Key); err == nil {
		t.Error("expired API key still checks")
	}
	runErrCases(t, f, []errCase{
		{"bad expiry", "POST", "/api/v1/apikeys", `{"expiry":"x"}`, 400, "invalid expiry"},
		{"unknown field", "POST", "/api/v1/apikeys", `{"ttl":"1h"}`, 400, `unknown field "ttl"`},
		{"expire unknown", "POST", "/api/v1/apikeys/0123456789ab/expire", "", 404, "weft-control apikeys list"},
	})
}

func TestDNSRecords(t *testing.T) {
	f := newFixture(t, false)
	var a, aaaa DNSRecord
	f.call(t, "POST", "/api/v1/dns/records", `{"name":"DB.Example.Internal.","value":"100.64.0.5"}`, 201, &a)
	f.call(t, "POST", "/api/v1/dns/records", `{"name":"db.example.internal","type":"aaaa","value":"fd7a:115c:a1e0::5"}`, 201, &aaaa)
	var recs []DNSRecord
	f.call(t, "GET", "/api/v1/dns/records", "", 200, &recs)
	want := []DNSRecord{
		{ID: a.ID, Name: "db.example.internal", Type: "A", Value: "100.64.0.5"},
		{ID: aaaa.ID, Name: "db.example.internal", Type: "AAAA", Value: "fd7a:115c:a1e0::5"},
	}
	if d := diff(want, recs); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
	f.call(t, "DELETE", "/api/v1/dns/records/"+itoa(a.ID), "", 204, nil)
	if got := f.st.DNSRecords(); len(got) != 1 || got[0].ID != aaaa.ID {
		t.Errorf("after delete, state has %+v", got)
	}
	runErrCases(t, f, []errCase{
		{"duplicate", "POST", "/api/v1/dns/records", `{"name":"db.example.internal","value":"fd7a:115c:a1e0::5"}`, 409, "already exists"},
		{"bad value", "POST", "/api/v1/dns/records", `{"name":"x.internal","value":"db"}`, 400, "give an IP address"},
		{"type mismatch", "POST", "/api/v1/dns/records", `{"name":"x.internal","type":"A","value":"fd7a::1"}`, 400, "does not match"},
		{"bad type", "POST", "/api/v1/dns/records", `{"name":"x.internal","type":"CNAME","value":"1.2.3.4"}`, 400, "use A or AAAA"},
		{"no name", "POST", "/api/v1/dns/records", `{"value":"1.2.3.4"}`, 400, "missing record"},
		{"delete unknown", "DELETE", "/api/v1/dns/records/999", "", 404, "weft-control dns records list"},
		{"delete bad id", "DELETE", "/api/v1/dns/records/db", "", 400, "numeric ID"},
	})
}

func itoa(i int64) string {
	b, _ := json.Marshal(i)
	return string(b)
}
