package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"weft.dev/weft/wire/key"
)

// VerifyAll returns a VerifyFunc that admits a client only if every
// non-nil f admits it (derper runs -verify-clients and -verify-client-url
// both when both are set).
func VerifyAll(fs ...VerifyFunc) VerifyFunc {
	return func(ctx context.Context, k key.NodePublic, info ClientInfo, remote netip.AddrPort) error {
		for _, f := range fs {
			if f == nil {
				continue
			}
			if err := f(ctx, k, info, remote); err != nil {
				return err
			}
		}
		return nil
	}
}

// admitRequest and admitResponse are the JSON of derper's
// -verify-client-url admission controller (tailcfg.DERPAdmitClientRequest
// and DERPAdmitClientResponse upstream).
type admitRequest struct {
	NodePublic key.NodePublic
	Source     netip.Addr
}

type admitResponse struct {
	Allow bool
}

// VerifyClientURL returns derper's -verify-client-url check: POST
// {"NodePublic","Source"} to u and require 200 with {"Allow":true}. When the
// controller is unreachable, failOpen admits the client. hc nil means a
// plain http.Client.
func VerifyClientURL(u string, failOpen bool, hc *http.Client) VerifyFunc {
	if hc == nil {
		hc = &http.Client{}
	}
	return func(ctx context.Context, k key.NodePublic, _ ClientInfo, remote netip.AddrPort) error {
		body, err := json.Marshal(admitRequest{NodePublic: k, Source: remote.Addr()})
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := hc.Do(req)
		if err != nil {
			if failOpen {
				return nil
			}
			return fmt.Errorf("admission controller unreachable: %w", err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("admission controller: %s", res.Status)
		}
		var ar admitResponse
		if err := json.NewDecoder(io.LimitReader(res.Body, 4<<10)).Decode(&ar); err != nil {
			return fmt.Errorf("admission controller response: %w", err)
		}
		if !ar.Allow {
			return fmt.Errorf("admission controller: %s from %v not allowed", k.ShortString(), remote.Addr())
		}
		return nil
	}
}

// VerifyLocalAPI returns derper's -verify-clients check: ask the local
// node daemon's LocalAPI (tailscaled or weftd, over its unix socket) whether
// the node key is a known peer; 404 rejects.
func VerifyLocalAPI(socketPath string) VerifyFunc {
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
	}}
	return func(ctx context.Context, k key.NodePublic, _ ClientInfo, _ netip.AddrPort) error {
		u := "http://local-tailscaled.sock/localapi/v0/whois?addr=" + url.QueryEscape(k.String())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		res, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("query local node daemon for %s: %w", k.ShortString(), err)
		}
		defer res.Body.Close()
		io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
		switch res.StatusCode {
		case http.StatusOK:
			return nil
		case http.StatusNotFound:
			return fmt.Errorf("peer %s not authorized (not found in local node daemon)", k.ShortString())
		default:
			return errors.New("local node daemon whois: " + res.Status)
		}
	}
}

// controlLookup is the part of weft-control's GET /api/v1/nodekeys/{key}
// answer (admin.NodeKeyLookup) the relay needs.
type controlLookup struct {
	Allow bool `json:"allow"`
}

// VerifyControl returns weft's -verify-control-url check: ask weft-control
// (baseURL, e.g. https://ctl.example.com) over its admin API, with the
// bearer apiKey, whether the client's node key is registered and not
// expired. 404 rejects; 200 admits when the answer says "allow". When
// control cannot be asked (transport error, 5xx), failOpen decides; a 401 or
// any other answer always rejects, so a revoked API key fails loudly rather
// than opening the relay. hc nil means a plain http.Client (system roots,
// SSL_CERT_FILE honoured).
func VerifyControl(baseURL, apiKey string, failOpen bool, hc *http.Client) (VerifyFunc, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("control URL %q: want http(s)://host[:port]", baseURL)
	}
	if apiKey == "" {
		return nil, errors.New("control URL given without an API key (create one with: weft-control apikeys create)")
	}
	if hc == nil {
		hc = &http.Client{}
	}
	base := strings.TrimRight(u.String(), "/") + "/api/v1/nodekeys/"
	return func(ctx context.Context, k key.NodePublic, _ ClientInfo, remote netip.AddrPort) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+k.String(), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+apiKey)
		res, err := hc.Do(req)
		if err != nil {
			if failOpen {
				return nil
			}
			return fmt.Errorf("ask control about %s: %w", k.ShortString(), err)
		}
		defer res.Body.Close()
		body := io.LimitReader(res.Body, 4<<10)
		switch {
		case res.StatusCode == http.StatusOK:
			var lk controlLookup
			if err := json.NewDecoder(body).Decode(&lk); err != nil {
				return fmt.Errorf("control's answer about %s: %w", k.ShortString(), err)
			}
			if !lk.Allow {
				return fmt.Errorf("node key %s has expired (control)", k.ShortString())
			}
			return nil
		case res.StatusCode == http.StatusNotFound:
			return fmt.Errorf("node key %s from %v is not registered with control", k.ShortString(), remote.Addr())
		case res.StatusCode >= 500 && failOpen:
			return nil
		default:
			msg, _ := io.ReadAll(body)
			return fmt.Errorf("control refused the lookup of %s: %s: %s", k.ShortString(), res.Status, bytes.TrimSpace(msg))
		}
	}, nil
}
