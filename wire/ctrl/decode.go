package ctrl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxRequestBody caps the JSON body of a request over the Noise connection
// (headscale uses the same 1 MiB; control.md §2.7, §7.20).
const MaxRequestBody = 1 << 20

// ErrBodyTooLarge is returned for a request body over MaxRequestBody.
var ErrBodyTooLarge = fmt.Errorf("request body larger than %d bytes", MaxRequestBody)

// ReadRequestBody reads a request body of at most MaxRequestBody bytes.
func ReadRequestBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRequestBody+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if len(b) > MaxRequestBody {
		return nil, ErrBodyTooLarge
	}
	return b, nil
}

// DecodeRegisterRequest decodes a /machine/register body. It checks syntax and
// size only; what the request means is the server's business (control.md §4.5).
func DecodeRegisterRequest(body []byte) (*RegisterRequest, error) {
	req := new(RegisterRequest)
	if err := decodeBody("register request", body, req); err != nil {
		return nil, err
	}
	return req, nil
}

// DecodeMapRequest decodes a /machine/map body, checking syntax and size only.
func DecodeMapRequest(body []byte) (*MapRequest, error) {
	req := new(MapRequest)
	if err := decodeBody("map request", body, req); err != nil {
		return nil, err
	}
	if len(req.EndpointTypes) > len(req.Endpoints) {
		return nil, fmt.Errorf("map request: %d EndpointTypes for %d Endpoints", len(req.EndpointTypes), len(req.Endpoints))
	}
	return req, nil
}

// decodeBody unmarshals one JSON object (unknown fields allowed, as tailcfg's
// decoders allow them) from a capped body.
func decodeBody(what string, body []byte, v any) error {
	if len(body) > MaxRequestBody {
		return fmt.Errorf("%s: %w", what, ErrBodyTooLarge)
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return fmt.Errorf("%s: empty body", what)
	}
	if trimmed[0] != '{' {
		return fmt.Errorf("%s: body is not a JSON object", what)
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%s: invalid JSON at byte %d: %w", what, se.Offset, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
