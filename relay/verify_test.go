package relay_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"weft.dev/weft/relay"
	"weft.dev/weft/wire/key"
)

// TestVerifyControl checks the -verify-control-url check against a fake
// weft-control admin API: the request it sends and every kind of answer.
func TestVerifyControl(t *testing.T) {
	known, expired := key.NewNode().Public(), key.NewNode().Public()
	var down bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer weft-api-test" {
			http.Error(w, `{"error":"bad API key"}`, http.StatusUnauthorized)
			return
		}
		if down {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		k, ok := strings.CutPrefix(r.URL.Path, "/api/v1/nodekeys/")
		switch {
		case !ok || r.Method != http.MethodGet:
			http.NotFound(w, r)
		case k == known.String():
			fmt.Fprintf(w, `{"nodeKey":%q,"node":1,"name":"a","expired":false,"allow":true}`, k)
		case k == expired.String():
			fmt.Fprintf(w, `{"nodeKey":%q,"node":2,"name":"b","expired":true,"allow":false}`, k)
		default:
			http.Error(w, `{"error":"not registered"}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	remote := netip.MustParseAddrPort("198.18.1.9:1234")
	for _, tc := range []struct {
		name     string
		apiKey   string
		k        key.NodePublic
		down     bool
		failOpen bool
		admit    bool
	}{
		{"known", "weft-api-test", known, false, false, true},
		{"unknown", "weft-api-test", key.NewNode().Public(), false, true, false},
		{"expired", "weft-api-test", expired, false, true, false},
		{"bad API key never fails open", "weft-api-wrong", known, false, true, false},
		{"control down, fail closed", "weft-api-test", known, true, false, false},
		{"control down, fail open", "weft-api-test", known, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			down = tc.down
			v, err := relay.VerifyControl(srv.URL+"/", tc.apiKey, tc.failOpen, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			err = v(context.Background(), tc.k, relay.ClientInfo{}, remote)
			if (err == nil) != tc.admit {
				t.Errorf("admitted = %v (err %v), want %v", err == nil, err, tc.admit)
			}
		})
	}
	for _, bad := range []struct{ url, apiKey string }{{"ftp://x", "k"}, {"http://", "k"}, {srv.URL, ""}} {
		if _, err := relay.VerifyControl(bad.url, bad.apiKey, false, nil); err == nil {
			t.Errorf("VerifyControl(%q, %q) accepted", bad.url, bad.apiKey)
		}
	}
}

// TestVerifyClientURLShape pins derper's admission-controller JSON both
// ways: the request body sent and the answers honoured.
func TestVerifyClientURLShape(t *testing.T) {
	k := key.NewNode().Public()
	var got map[string]any
	var answer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = nil
		json.NewDecoder(r.Body).Decode(&got)
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	v := relay.VerifyClientURL(srv.URL, false, srv.Client())
	remote := netip.MustParseAddrPort("198.18.1.9:1234")
	answer = `{"Allow":true}`
	if err := v(context.Background(), k, relay.ClientInfo{}, remote); err != nil {
		t.Fatalf("allowed client refused: %v", err)
	}
	want := map[string]any{"NodePublic": k.String(), "Source": "198.18.1.9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("request body = %v, want %v", got, want)
	}
	answer = `{"Allow":false}`
	if err := v(context.Background(), k, relay.ClientInfo{}, remote); err == nil {
		t.Error("denied client admitted")
	}
}
