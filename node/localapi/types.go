package localapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/ipn"
)

// maxBody caps LocalAPI request bodies.
const maxBody = 1 << 20

// StartRequest is the body of POST /localapi/v0/start (`up`).
type StartRequest struct {
	// Prefs are the complete new preferences; null keeps the current ones.
	Prefs *ipn.Prefs
	// AuthKey is a pre-auth key.
	AuthKey string `json:",omitempty"`
	// ForceReauth logs in again with a new node key.
	ForceReauth bool `json:",omitempty"`
}

// LocalCreds answers /localapi/v0/debug-local-creds: who the daemon
// thinks the caller is and what it may do.
type LocalCreds struct {
	Known    bool
	UID      int
	PID      int
	CanWrite bool
	// Operator is the --operator user, if any.
	Operator string `json:",omitempty"`
	// Reason explains CanWrite.
	Reason string
}

// errBadRequest marks decoding failures (400).
var errBadRequest = errors.New("bad request")

// decodeJSON decodes exactly one JSON object of at most maxBody bytes.
func decodeJSON(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return fmt.Errorf("%w: reading body: %v", errBadRequest, err)
	}
	return decodeJSONBytes(b, v)
}

func decodeJSONBytes(b []byte, v any) error {
	if len(b) > maxBody {
		return fmt.Errorf("%w: body larger than %d bytes", errBadRequest, maxBody)
	}
	t := bytes.TrimSpace(b)
	if len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("%w: body must be a JSON object", errBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the JSON object", errBadRequest)
	}
	return nil
}

// DecodeStartRequest decodes and checks a start body.
func DecodeStartRequest(b []byte) (*StartRequest, error) {
	var req StartRequest
	if err := decodeJSONBytes(b, &req); err != nil {
		return nil, err
	}
	if req.Prefs != nil {
		if err := checkPrefs(req.Prefs); err != nil {
			return nil, err
		}
	}
	return &req, nil
}

// DecodeMaskedPrefs decodes and checks a prefs edit.
func DecodeMaskedPrefs(b []byte) (*ipn.MaskedPrefs, error) {
	var mp ipn.MaskedPrefs
	if err := decodeJSONBytes(b, &mp); err != nil {
		return nil, err
	}
	if err := checkPrefs(&mp.Prefs); err != nil {
		return nil, err
	}
	return &mp, nil
}

// checkPrefs rejects values no CLI would send.
func checkPrefs(p *ipn.Prefs) error {
	if p.ControlURL != "" && !strings.HasPrefix(p.ControlURL, "http://") && !strings.HasPrefix(p.ControlURL, "https://") {
		return fmt.Errorf("%w: ControlURL %q must start with http:// or https://", errBadRequest, p.ControlURL)
	}
	if p.NetfilterMode < ipn.NetfilterOff || p.NetfilterMode > ipn.NetfilterOn {
		return fmt.Errorf("%w: invalid NetfilterMode %d", errBadRequest, p.NetfilterMode)
	}
	for _, t := range p.AdvertiseTags {
		if !strings.HasPrefix(t, "tag:") || len(t) == 4 {
			return fmt.Errorf("%w: tag %q must look like tag:name", errBadRequest, t)
		}
	}
	if len(p.Hostname) > 256 {
		return fmt.Errorf("%w: hostname longer than 256 characters", errBadRequest)
	}
	return nil
}

// parsePingType maps the ?type= of /ping.
func parsePingType(s string) (engine.PingType, error) {
	switch strings.ToLower(s) {
	case "", "disco":
		return engine.PingDisco, nil
	case "tsmp":
		return engine.PingTSMP, nil
	case "icmp":
		return engine.PingICMP, nil
	}
	return "", fmt.Errorf("%w: unknown ping type %q (want disco, TSMP or ICMP)", errBadRequest, s)
}

// parseAddr accepts "ip" or "ip:port" (whois takes both).
func parseAddr(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: %q is not an IP address", errBadRequest, s)
	}
	return a, nil
}
