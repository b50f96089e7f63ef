package ctrl

import (
	"bytes"
	"encoding/json"
	"testing"
)

// reencodeStable checks that a decoded value re-encodes, and that decoding
// that encoding gives the same encoding again.
func reencodeStable[T any](t *testing.T, v *T, decode func([]byte) (*T, error)) {
	t.Helper()
	b1, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("decoded value does not re-encode: %v", err)
	}
	v2, err := decode(b1)
	if err != nil {
		t.Fatalf("re-encoded value does not decode: %v\n%s", err, b1)
	}
	b2, err := json.Marshal(v2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("encoding not stable:\n%s\n%s", b1, b2)
	}
}

func FuzzDecodeRegisterRequest(f *testing.F) {
	for _, s := range []string{
		sampleRegister,
		`{}`,
		`{"Version":142,"Expiry":"1970-01-01T00:02:03Z","NodeKey":"nodekey:` + hex11 + `"}`,
		`{"Auth":{"Oauth2Token":{"access_token":"t","expiry":"2026-01-01T00:00:00Z"}},"Timestamp":null,"SignatureType":"signature-v2"}`,
		`{"Hostinfo":{"RoutableIPs":["0.0.0.0/0","::/0"],"Services":[{"Proto":"peerapi4","Port":1}],"Location":{"Priority":1}}}`,
		`{"Hostinfo":null,"NodeKeySignature":"AQID"}`,
		`null`, `[`, `{"Version":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRegisterRequest(body)
		if err != nil {
			return
		}
		reencodeStable(t, req, DecodeRegisterRequest)
	})
}

func FuzzDecodeMapRequest(f *testing.F) {
	for _, s := range []string{
		sampleMap,
		`{"Version":142,"Stream":false,"OmitPeers":true,"Endpoints":[],"Hostinfo":{}}`,
		`{"Endpoints":["1.2.3.4:5"],"EndpointTypes":[9]}`,
		`{"Hostinfo":{"NetInfo":{"DERPLatency":{"1-v4":0.5}},"TPM":{"Model":1}},"HardwareAttestationKeySignatureTimestamp":"2026-01-01T00:00:00Z"}`,
		`{"DiscoKey":"discokey:` + hex22 + `","Unknown":{"deep":[[[]]]}}`,
		`{"Endpoints":["999.1.1.1:5"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeMapRequest(body)
		if err != nil {
			return
		}
		reencodeStable(t, req, DecodeMapRequest)
	})
}

func FuzzReadFrame(f *testing.F) {
	enc, err := NewFrameEncoder()
	if err != nil {
		f.Fatal(err)
	}
	defer enc.Close()
	ka, _ := enc.AppendFrame(nil, []byte(KeepAliveJSON), true)
	f.Add(ka, true, 0)
	f.Add(frameBytes([]byte(KeepAliveJSON)), false, 0)
	f.Add(frameBytes([]byte(`{"Peers":[]}`)), false, 5)
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 1}, false, 0)
	f.Add(frameBytes(append(bytes.Clone(zstdMagic), 0x20, 0x10, 0, 0)), true, 1<<10)
	f.Add([]byte{}, true, 0)

	f.Fuzz(func(t *testing.T, data []byte, compressed bool, max int) {
		max = max % (1 << 20) // keep allocations small; <= 0 selects the default
		payload, err := ReadFrame(bytes.NewReader(data), compressed, max)
		if err == nil {
			limit := max
			if limit <= 0 {
				limit = DefaultMaxFrameSize
			}
			if len(payload) > limit {
				t.Fatalf("payload of %d bytes exceeds max %d", len(payload), limit)
			}
		}
		// Whatever the input, framing it and reading it back is the identity.
		frame, err := enc.AppendFrame(nil, data, compressed)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ReadFrame(bytes.NewReader(frame), compressed, len(data)+1)
		if err != nil {
			t.Fatalf("round trip of %d bytes: %v", len(data), err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("round trip changed the payload")
		}
	})
}
