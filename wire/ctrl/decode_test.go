package ctrl

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// A register request as tailscaled v1.102.5 sends it with --authkey (captured shape).
const sampleRegister = `{"Version":142,"NodeKey":"nodekey:` + "1111111111111111111111111111111111111111111111111111111111111111" +
	`","OldNodeKey":"nodekey:0000000000000000000000000000000000000000000000000000000000000000",` +
	`"NLKey":"nlpub:0000000000000000000000000000000000000000000000000000000000000000","Auth":{"AuthKey":"K"},` +
	`"Expiry":"0001-01-01T00:00:00Z","Followup":"","Hostinfo":{"IPNVersion":"1.102.5-ERR-BuildInfo","BackendLogID":"x",` +
	`"OS":"linux","OSVersion":"6.8.0","Hostname":"n1","GoArch":"amd64","GoVersion":"go1.26.8","Userspace":true,"UserspaceRouter":true},` +
	`"NodeKeySignature":null}`

// A stream map request as tailscaled v1.102.5 sends it.
const sampleMap = `{"Version":142,"Compress":"zstd","KeepAlive":true,"NodeKey":"nodekey:` +
	"1111111111111111111111111111111111111111111111111111111111111111" + `","DiscoKey":"discokey:` +
	"2222222222222222222222222222222222222222222222222222222222222222" + `","Stream":true,` +
	`"Hostinfo":{"Hostname":"n1","NetInfo":{"PreferredDERP":900,"WorkingUDP":true,"DERPLatency":{"900-v4":0.001}}},` +
	`"Endpoints":["198.51.100.7:41641","[2001:db8::1]:41641"],"EndpointTypes":[2,1],"DebugFlags":["netstack"]}`

func TestDecodeRegisterRequest(t *testing.T) {
	req, err := DecodeRegisterRequest([]byte(sampleRegister))
	if err != nil {
		t.Fatal(err)
	}
	if req.Version != CurrentCapabilityVersion || req.NodeKey != nodeKey || !req.OldNodeKey.IsZero() ||
		req.Auth == nil || req.Auth.AuthKey != "K" || !req.Expiry.IsZero() || req.Hostinfo.Hostname != "n1" ||
		req.Hostinfo.Userspace == nil || !*req.Hostinfo.Userspace {
		t.Errorf("decoded %+v", req)
	}
}

func TestDecodeMapRequest(t *testing.T) {
	req, err := DecodeMapRequest([]byte(sampleMap))
	if err != nil {
		t.Fatal(err)
	}
	if req.Compress != CompressZstd || !req.Stream || req.DiscoKey != discoKey || len(req.Endpoints) != 2 ||
		req.EndpointTypes[0] != EndpointSTUN || req.Hostinfo.NetInfo.PreferredDERP != 900 {
		t.Errorf("decoded %+v", req)
	}
	if got := req.EndpointTypes[1].String(); got != "local" {
		t.Errorf("EndpointTypes[1] = %q", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty", "", "empty body"},
		{"whitespace", " \n", "empty body"},
		{"null", "null", "not a JSON object"},
		{"array", "[]", "not a JSON object"},
		{"syntax", `{"Version":`, "unexpected end"},
		{"bad key", `{"NodeKey":"nodekey:zz"}`, `"nodekey:zz"`},
		{"wrong type", `{"Version":"142"}`, "Version"},
		{"trailing garbage", `{} {}`, "invalid"},
		{"too large", `{"Followup":"` + strings.Repeat("a", MaxRequestBody) + `"}`, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeRegisterRequest([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "register request: ") {
				t.Errorf("DecodeRegisterRequest = %v, want error containing %q", err, tt.want)
			}
			_, err = DecodeMapRequest([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeMapRequest = %v, want error containing %q", err, tt.want)
			}
		})
	}
	if _, err := DecodeMapRequest([]byte(`{"EndpointTypes":[1]}`)); err == nil {
		t.Error("EndpointTypes without Endpoints: want error")
	}
}

func TestReadRequestBody(t *testing.T) {
	b, err := ReadRequestBody(strings.NewReader("{}"))
	if err != nil || string(b) != "{}" {
		t.Errorf("got %q, %v", b, err)
	}
	_, err = ReadRequestBody(bytes.NewReader(make([]byte, MaxRequestBody+1)))
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Errorf("oversized body: %v", err)
	}
	b, err = ReadRequestBody(bytes.NewReader(make([]byte, MaxRequestBody)))
	if err != nil || len(b) != MaxRequestBody {
		t.Errorf("body at the limit: %d, %v", len(b), err)
	}
}
