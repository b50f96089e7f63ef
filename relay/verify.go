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
