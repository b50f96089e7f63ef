package controlclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/klauspost/compress/zstd"

	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// register sends one RegisterRequest. Every answer but 200 is an error
// (headscale answers 400 only for an unsupported version).
func (nc *noiseClient) register(ctx context.Context, req *ctrl.RegisterRequest) (*ctrl.RegisterResponse, error) {
	req.Version = nc.capVer
	res, err := nc.post(ctx, "/machine/register", req, req.OldNodeKey, req.NodeKey)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, newHTTPError("register request", res)
	}
	body, err := readBody(res, maxRegisterResponse)
	if err != nil {
		return nil, fmt.Errorf("register response: %w", err)
	}
	var out ctrl.RegisterResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("register response: %w", err)
	}
	return &out, nil
}

// liteUpdate sends a Stream=false, OmitPeers=true map request and drains
// the (usually empty) answer.
func (nc *noiseClient) liteUpdate(ctx context.Context, req *ctrl.MapRequest) error {
	req.Version = nc.capVer
	req.Stream, req.OmitPeers = false, true
	res, err := nc.post(ctx, "/machine/map", req, req.NodeKey)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return newHTTPError("lite map update", res)
	}
	_, err = readBody(res, 1<<20)
	return err
}

// openStream starts the long poll and returns the framed body.
func (nc *noiseClient) openStream(ctx context.Context, req *ctrl.MapRequest) (io.ReadCloser, error) {
	req.Version = nc.capVer
	req.Stream, req.OmitPeers = true, false
	res, err := nc.post(ctx, "/machine/map", req, req.NodeKey)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, newHTTPError("map request", res)
	}
	return res.Body, nil
}

// frameReader reads map frames whatever the server chose: frames whose
// payload starts with the zstd magic are decompressed, others are taken as
// raw JSON. Servers are supposed to follow MapRequest.Compress, but a
// client loses nothing by accepting both.
type frameReader struct {
	fr    *ctrl.FrameReader
	dec   *zstd.Decoder
	limit int
	out   []byte
}

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

func newFrameReader(r io.Reader, limit int) (*frameReader, error) {
	if limit <= 0 {
		limit = ctrl.DefaultMaxFrameSize
	}
	// Raw mode: FrameReader only strips the length prefix and caps the
	// wire size; decompression is decided per frame below.
	fr, err := ctrl.NewFrameReader(r, false, limit)
	if err != nil {
		return nil, err
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(max(limit, 8<<20))))
	if err != nil {
		return nil, err
	}
	return &frameReader{fr: fr, dec: dec, limit: limit}, nil
}

func (r *frameReader) close() { r.fr.Close(); r.dec.Close() }

// next returns the next frame decoded as a MapResponse.
func (r *frameReader) next() (*ctrl.MapResponse, error) {
	payload, err := r.fr.Next()
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(payload, zstdMagic) {
		r.out, err = r.dec.DecodeAll(payload, r.out[:0])
		if err != nil {
			return nil, fmt.Errorf("map frame: zstd: %w", err)
		}
		if len(r.out) > r.limit {
			return nil, fmt.Errorf("map frame: decoded payload exceeds %d bytes", r.limit)
		}
		payload = r.out
	}
	m := new(ctrl.MapResponse)
	if err := json.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("map frame: decode MapResponse: %w", err)
	}
	return m, nil
}

// lbKey returns k's public key, or zero for a zero private key.
func lbKey(k key.NodePrivate) key.NodePublic {
	if k.IsZero() {
		return key.NodePublic{}
	}
	return k.Public()
}
