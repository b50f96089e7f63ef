package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// Client calls the admin API of one weft-control, over its unix socket or
// over HTTP(S) with an API key. Its methods are safe for concurrent use.
type Client struct {
	hc      *http.Client
	base    string // URL prefix up to (not including) /api/v1
	apiKey  string // empty on the socket
	target  string // what to name in "cannot reach" errors
	startAs string // how to start the server, for those errors
}

// Error is an error answer from the server.
type Error struct {
	Status  int    // HTTP status code
	Message string // the server's explanation, which says what to do next
	// Policy locates each problem of a refused policy.
	Policy []PolicyError
}

// Error returns the server's message.
func (e *Error) Error() string { return e.Message }

// DialUnix returns a client for the weft-control serving stateDir. It does
// not connect: the first call reports a server that is not running.
func DialUnix(stateDir string) (*Client, error) {
	path := SocketPath(stateDir)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("admin socket path %s is longer than %d bytes: use a shorter --state-dir", path, maxSocketPath)
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}
	return &Client{
		hc:      &http.Client{Transport: tr},
		base:    "http://weft-control", // host is ignored by the dialer
		target:  path,
		startAs: "weft-control --state-dir " + stateDir,
	}, nil
}

// DialHTTP returns a client for the admin API at serverURL (e.g.
// https://control.example.com), authenticated with apiKey.
func DialHTTP(serverURL, apiKey string) (*Client, error) {
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid server URL %q: use the form https://control.example.com", serverURL)
	}
	if apiKey == "" {
		return nil, errors.New("no API key for the remote admin API: pass --api-key or set WEFT_API_KEY (create a key on the server with: weft-control apikeys create)")
	}
	return &Client{
		hc:      &http.Client{},
		base:    strings.TrimRight(u.String(), "/"),
		apiKey:  apiKey,
		target:  u.Redacted(),
		startAs: "weft-control",
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	return nil
}

// do sends a request with an optional JSON body and decodes a JSON answer
// into out (nil: ignore the body).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: server answered %s: is %s a weft-control admin API?", method, path, resp.Status, c.target)
		}
		return &Error{Status: resp.StatusCode, Message: e.Error, Policy: e.Policy}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w (is the server the same weft version?)", method, path, err)
	}
	return nil
}

func (c *Client) unreachable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("cannot reach weft-control at %s: permission denied: run this as the user that runs weft-control (the socket is mode 0600)", c.target)
	}
	if c.apiKey == "" && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)) {
		return fmt.Errorf("cannot reach weft-control at %s: is it running? start it with: %s", c.target, c.startAs)
	}
	return fmt.Errorf("cannot reach weft-control at %s: is it running? start it with: %s (%w)", c.target, c.startAs, err)
}

func seg(s string) string { return url.PathEscape(s) }

// Users lists users.
func (c *Client) Users(ctx context.Context) ([]User, error) {
	var out []User
	return out, c.do(ctx, http.MethodGet, "/api/v1/users", nil, &out)
}

// CreateUser creates a user.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (User, error) {
	var out User
	return out, c.do(ctx, http.MethodPost, "/api/v1/users", req, &out)
}

// DeleteUser deletes a user that owns no nodes.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/users/"+seg(name), nil, nil)
}

// PreAuthKeys lists pre-auth keys, of one user when user is not empty.
func (c *Client) PreAuthKeys(ctx context.Context, user string) ([]PreAuthKey, error) {
	path := "/api/v1/keys"
	if user != "" {
		path += "?user=" + url.QueryEscape(user)
	}
	var out []PreAuthKey
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// CreatePreAuthKey creates a pre-auth key; the answer holds its text.
func (c *Client) CreatePreAuthKey(ctx context.Context, req CreatePreAuthKeyRequest) (CreatedPreAuthKey, error) {
	var out CreatedPreAuthKey
	return out, c.do(ctx, http.MethodPost, "/api/v1/keys", req, &out)
}

// ExpirePreAuthKey expires the pre-auth key with the given prefix (a whole
// key is accepted too).
func (c *Client) ExpirePreAuthKey(ctx context.Context, prefix string) (PreAuthKey, error) {
	var out PreAuthKey
	return out, c.do(ctx, http.MethodPost, "/api/v1/keys/"+seg(prefix)+"/expire", nil, &out)
}

// Nodes lists nodes, of one user when user is not empty.
func (c *Client) Nodes(ctx context.Context, user string) ([]Node, error) {
	path := "/api/v1/nodes"
	if user != "" {
		path += "?user=" + url.QueryEscape(user)
	}
	var out []Node
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Node returns one node by ID or name.
func (c *Client) Node(ctx context.Context, node string) (Node, error) {
	var out Node
	return out, c.do(ctx, http.MethodGet, "/api/v1/nodes/"+seg(node), nil, &out)
}

// PendingLogins lists interactive logins waiting for approval.
func (c *Client) PendingLogins(ctx context.Context) ([]PendingLogin, error) {
	var out []PendingLogin
	return out, c.do(ctx, http.MethodGet, "/api/v1/nodes/pending", nil, &out)
}

// RegisterNode approves the interactive login id for user.
func (c *Client) RegisterNode(ctx context.Context, id, user string) (Node, error) {
	var out Node
	return out, c.do(ctx, http.MethodPost, "/api/v1/nodes/register", RegisterNodeRequest{ID: id, User: user}, &out)
}

// RenameNode gives a node a new name.
func (c *Client) RenameNode(ctx context.Context, node, name string) (Node, error) {
	var out Node
	return out, c.do(ctx, http.MethodPost, "/api/v1/nodes/"+seg(node)+"/rename", RenameNodeRequest{Name: name}, &out)
}

// ExpireNode expires a node's key now.
func (c *Client) ExpireNode(ctx context.Context, node string) (Node, error) {
	var out Node
	return out, c.do(ctx, http.MethodPost, "/api/v1/nodes/"+seg(node)+"/expire", nil, &out)
}

// DeleteNode deletes a node.
func (c *Client) DeleteNode(ctx context.Context, node string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/nodes/"+seg(node), nil, nil)
}

// SetNodeIP pins a node's IPv4 or IPv6 address.
func (c *Client) SetNodeIP(ctx context.Context, node, ip string) (Node, error) {
	var out Node
	return out, c.do(ctx, http.MethodPost, "/api/v1/nodes/"+seg(node)+"/ip", SetIPRequest{IP: ip}, &out)
}

// SetNodeTags replaces a node's tags.
func (c *Client) SetNodeTags(ctx context.Context, node string, tags []string) (Node, error) {
	if tags == nil {
		tags = []string{}
	}
	var out Node
	return out, c.do(ctx, http.MethodPost, "/api/v1/nodes/"+seg(node)+"/tags", SetTagsRequest{Tags: tags}, &out)
}

// Routes lists the routes of every node that has any.
func (c *Client) Routes(ctx context.Context) ([]NodeRoutes, error) {
	var out []NodeRoutes
	return out, c.do(ctx, http.MethodGet, "/api/v1/routes", nil, &out)
}

// ApproveRoutes adds routes to a node's approved set.
func (c *Client) ApproveRoutes(ctx context.Context, node string, routes []string) (RoutesResult, error) {
	var out RoutesResult
	return out, c.do(ctx, http.MethodPost, "/api/v1/nodes/"+seg(node)+"/routes/approve", RoutesRequest{Routes: routes}, &out)
}

// UnapproveRoutes removes routes from a node's approved set.
func (c *Client) UnapproveRoutes(ctx context.Context, node string, routes []string) (RoutesResult, error) {
	var out RoutesResult
	return out, c.do(ctx, http.MethodPost, "/api/v1/nodes/"+seg(node)+"/routes/unapprove", RoutesRequest{Routes: routes}, &out)
}

// DNSRecords lists the custom DNS records.
func (c *Client) DNSRecords(ctx context.Context) ([]DNSRecord, error) {
	var out []DNSRecord
	return out, c.do(ctx, http.MethodGet, "/api/v1/dns/records", nil, &out)
}

// AddDNSRecord adds a custom DNS record.
func (c *Client) AddDNSRecord(ctx context.Context, req DNSRecordRequest) (DNSRecord, error) {
	var out DNSRecord
	return out, c.do(ctx, http.MethodPost, "/api/v1/dns/records", req, &out)
}

// DeleteDNSRecord deletes a custom DNS record by ID.
func (c *Client) DeleteDNSRecord(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/dns/records/"+strconv.FormatInt(id, 10), nil, nil)
}

// APIKeys lists admin API keys.
func (c *Client) APIKeys(ctx context.Context) ([]APIKey, error) {
	var out []APIKey
	return out, c.do(ctx, http.MethodGet, "/api/v1/apikeys", nil, &out)
}

// CreateAPIKey creates an admin API key; the answer holds its text.
func (c *Client) CreateAPIKey(ctx context.Context, expiry string) (CreatedAPIKey, error) {
	var out CreatedAPIKey
	return out, c.do(ctx, http.MethodPost, "/api/v1/apikeys", CreateAPIKeyRequest{Expiry: expiry}, &out)
}

// ExpireAPIKey expires the API key with the given prefix.
func (c *Client) ExpireAPIKey(ctx context.Context, prefix string) (APIKey, error) {
	var out APIKey
	return out, c.do(ctx, http.MethodPost, "/api/v1/apikeys/"+seg(prefix)+"/expire", nil, &out)
}

// Policy returns the active tailnet policy.
func (c *Client) Policy(ctx context.Context) (Policy, error) {
	var out Policy
	return out, c.do(ctx, http.MethodGet, "/api/v1/policy", nil, &out)
}

// SetPolicy validates, stores and applies a policy. A refused policy comes
// back as an *Error whose Policy field locates every problem.
func (c *Client) SetPolicy(ctx context.Context, text string) (SetPolicyResult, error) {
	var out SetPolicyResult
	return out, c.do(ctx, http.MethodPut, "/api/v1/policy", SetPolicyRequest{Policy: text}, &out)
}

// CheckPolicy validates a policy and runs its tests against the server's
// current nodes, without applying it.
func (c *Client) CheckPolicy(ctx context.Context, text string) (CheckPolicyResult, error) {
	var out CheckPolicyResult
	return out, c.do(ctx, http.MethodPost, "/api/v1/policy/check", SetPolicyRequest{Policy: text}, &out)
}

// PolicyHistory lists the stored policy versions.
func (c *Client) PolicyHistory(ctx context.Context) ([]PolicyVersion, error) {
	var out []PolicyVersion
	return out, c.do(ctx, http.MethodGet, "/api/v1/policy/history", nil, &out)
}
