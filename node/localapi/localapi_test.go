package localapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/ipn"
	"weft.dev/weft/node/ipn/ipnlocal"
	"weft.dev/weft/node/state"
)

func newTestHandler(t testing.TB) *Handler {
	st, err := state.Open(context.Background(), state.NewMem())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ipnlocal.New(ipnlocal.Options{Store: st, Engine: engine.NewFake(engine.LocalState{})})
	if err != nil {
		t.Fatal(err)
	}
	b.Init()
	t.Cleanup(b.Shutdown)
	return NewHandler(Config{Backend: b, DaemonUID: 0, LookupUID: func(n string) (int, error) {
		if n == "bob" {
			return 1001, nil
		}
		return -1, context.Canceled
	}})
}

func serve(h *Handler, creds Creds, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req = req.WithContext(context.WithValue(req.Context(), credsKey{}, creds))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestPermissionMatrix(t *testing.T) {
	h := newTestHandler(t)
	root := Creds{Known: true, UID: 0}
	alice := Creds{Known: true, UID: 1000}
	bob := Creds{Known: true, UID: 1001}
	unknown := Creds{}
	down := `{"WantRunning":false,"WantRunningSet":true}`
	cases := []struct {
		who        string
		c          Creds
		method     string
		path, body string
		want       int
	}{
		{"alice reads status", alice, "GET", "/localapi/v0/status", "", 200},
		{"unknown reads status", unknown, "GET", "/localapi/v0/status", "", 200},
		{"alice cannot edit prefs", alice, "PATCH", "/localapi/v0/prefs", down, 403},
		{"unknown cannot edit prefs", unknown, "PATCH", "/localapi/v0/prefs", down, 403},
		{"alice cannot read goroutines", alice, "GET", "/localapi/v0/goroutines", "", 403},
		{"root sets operator bob", root, "PATCH", "/localapi/v0/prefs", `{"OperatorUser":"bob","OperatorUserSet":true}`, 200},
		{"bob may edit prefs", bob, "PATCH", "/localapi/v0/prefs", down, 200},
		{"alice still may not", alice, "POST", "/localapi/v0/logout", "", 403},
	}
	for _, tc := range cases {
		if w := serve(h, tc.c, tc.method, tc.path, tc.body); w.Code != tc.want {
			t.Errorf("%s: %s %s = %d, want %d: %s", tc.who, tc.method, tc.path, w.Code, tc.want, w.Body)
		}
	}
}

func FuzzDecodeRequests(f *testing.F) {
	for _, s := range []string{
		`{"Prefs":{"ControlURL":"http://127.0.0.1:8080","WantRunning":true},"AuthKey":"k"}`,
		`{"ControlURLSet":true,"ControlURL":"gopher://"}`,
		`{"AdvertiseTags":["tag:a","x"],"AdvertiseTagsSet":true}`,
		`{"ExitNodeIP":"100.64.0.1","ExitNodeIPSet":true}`,
		`{`, `null`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if req, err := DecodeStartRequest(b); err == nil && req.Prefs != nil {
			if err := checkPrefs(req.Prefs); err != nil {
				t.Fatalf("accepted prefs fail the check: %v", err)
			}
		}
		if mp, err := DecodeMaskedPrefs(b); err == nil {
			_ = mp.ApplyTo(ipn.NewPrefs())
		}
	})
}

// FuzzHandler sends arbitrary requests: the LocalAPI must never answer
// 5xx to bad input, and never panic.
func FuzzHandler(f *testing.F) {
	h := newTestHandler(f)
	f.Add("POST", "/localapi/v0/start", "garbage")
	f.Add("PATCH", "/localapi/v0/prefs", `{"NetfilterMode":-1,"NetfilterModeSet":true}`)
	f.Add("GET", "/localapi/v0/whois?addr=1.2.3.4:99999", "")
	f.Add("POST", "/localapi/v0/ping?ip=::1&type=icmp", "")
	f.Add("GET", "/localapi/v0/profiles/", "")
	f.Add("POST", "/localapi/v0/profiles/%2e%2e", "")
	f.Fuzz(func(t *testing.T, method, path, body string) {
		switch method {
		case "GET", "POST", "PATCH", "PUT", "DELETE":
		default:
			return
		}
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#") || strings.Contains(path, "watch-ipn-bus") ||
			strings.Contains(path, "start") || strings.Contains(path, "login") || strings.Contains(path, "logout") || strings.Contains(path, "profiles/") && method != "GET" {
			return // watch streams forever; state-changing calls that succeed are covered elsewhere
		}
		req, err := http.NewRequest(method, "http://local"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req = req.WithContext(context.WithValue(req.Context(), credsKey{}, Creds{Known: true, UID: 0}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body)
		}
	})
}
