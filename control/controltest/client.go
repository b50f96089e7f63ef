package controltest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"

	"golang.org/x/net/http2"

	"weft.dev/weft/noise"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// Client is one simulated device: a machine key, a node key and a disco key,
// over one Noise connection.
type Client struct {
	URL     string
	Machine key.MachinePrivate
	Node    key.NodePrivate
	Disco   key.DiscoPrivate

	conn *noise.Conn
	cc   *http2.ClientConn
}

// Dial fetches the server key and opens the Noise + HTTP/2 connection.
func Dial(ctx context.Context, url string, hc *http.Client) (*Client, error) {
	c := &Client{URL: url, Machine: key.NewMachine(), Node: key.NewNode(), Disco: key.NewDisco()}
	return c, c.Connect(ctx, hc)
}

// Connect (re)opens the connection with the client's existing keys.
func (c *Client) Connect(ctx context.Context, hc *http.Client) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	sk, err := noise.GetServerKey(ctx, hc, c.URL, int(ctrl.CurrentCapabilityVersion))
	if err != nil {
		return err
	}
	conn, err := noise.Dial(ctx, noise.DialConfig{
		URL: c.URL, ServerKey: sk, MachineKey: c.Machine,
		ProtocolVersion: uint16(ctrl.CurrentCapabilityVersion),
	})
	if err != nil {
		return err
	}
	cc, err := (&http2.Transport{AllowHTTP: true}).NewClientConn(conn)
	if err != nil {
		conn.Close()
		return fmt.Errorf("http2: %w", err)
	}
	c.conn, c.cc = conn, cc
	return nil
}

// Close closes the connection.
func (c *Client) Close() error {
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

func (c *Client) post(ctx context.Context, path string, body any) (*http.Response, error) {
	js, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", "http://unused"+path, bytes.NewReader(js))
	if err != nil {
		return nil, err
	}
	return c.cc.RoundTrip(req)
}

// Register sends a RegisterRequest for the client's node key (NodeKey and
// Version are filled in).
func (c *Client) Register(ctx context.Context, req ctrl.RegisterRequest) (*ctrl.RegisterResponse, error) {
	req.Version = ctrl.CurrentCapabilityVersion
	if req.NodeKey.IsZero() {
		req.NodeKey = c.Node.Public()
	}
	res, err := c.post(ctx, "/machine/register", req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("register: http %d: %s", res.StatusCode, bytes.TrimSpace(body))
	}
	var out ctrl.RegisterResponse
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("register response: %w", err)
	}
	return &out, nil
}

func (c *Client) mapRequest(req ctrl.MapRequest) ctrl.MapRequest {
	req.Version = ctrl.CurrentCapabilityVersion
	req.NodeKey = c.Node.Public()
	if req.DiscoKey.IsZero() {
		req.DiscoKey = c.Disco.Public()
	}
	req.Compress = ctrl.CompressZstd
	req.KeepAlive = true
	return req
}

// LiteUpdate sends a Stream=false, OmitPeers=true map request.
func (c *Client) LiteUpdate(ctx context.Context, req ctrl.MapRequest) error {
	req = c.mapRequest(req)
	req.Stream, req.OmitPeers = false, true
	res, err := c.post(ctx, "/machine/map", req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != 200 {
		return fmt.Errorf("lite update: http %d: %s", res.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// StreamBody opens the long poll and returns the raw framed body, for
// callers that read frames themselves (benchmarks that must not spend their
// CPU decoding every full map).
func (c *Client) StreamBody(ctx context.Context, req ctrl.MapRequest) (io.ReadCloser, error) {
	req = c.mapRequest(req)
	req.Stream = true
	res, err := c.post(ctx, "/machine/map", req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != 200 {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		res.Body.Close()
		return nil, fmt.Errorf("map: http %d: %s", res.StatusCode, bytes.TrimSpace(body))
	}
	return res.Body, nil
}

// Stream opens the long poll.
func (c *Client) Stream(ctx context.Context, req ctrl.MapRequest) (*Stream, error) {
	body, err := c.StreamBody(ctx, req)
	if err != nil {
		return nil, err
	}
	fr, err := ctrl.NewFrameReader(body, true, 0)
	if err != nil {
		body.Close()
		return nil, err
	}
	return &Stream{body: body, fr: fr, peers: make(map[ctrl.NodeID]*ctrl.Node)}, nil
}

// Stream is a long poll and the netmap built from it.
type Stream struct {
	body io.ReadCloser
	fr   *ctrl.FrameReader

	mu sync.Mutex
	// guarded by mu:
	self   *ctrl.Node
	peers  map[ctrl.NodeID]*ctrl.Node
	last   *ctrl.MapResponse
	dns    *ctrl.DNSConfig
	filter []ctrl.FilterRule
}

// Close ends the poll. The frame reader is released by the goroutine
// reading the stream, when its Next fails.
func (s *Stream) Close() error {
	return s.body.Close()
}

// Next reads one frame, applies it to the netmap and returns it.
func (s *Stream) Next() (*ctrl.MapResponse, error) {
	js, err := s.fr.Next()
	if err != nil {
		s.fr.Close()
		return nil, err
	}
	var r ctrl.MapResponse
	if err := json.Unmarshal(js, &r); err != nil {
		return nil, fmt.Errorf("decode map response: %w", err)
	}
	s.apply(&r)
	return &r, nil
}

// apply follows the client's rules (control.md §3.3).
func (s *Stream) apply(r *ctrl.MapResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = r
	if r.KeepAlive {
		return
	}
	if r.Node != nil {
		s.self = r.Node
	}
	if r.DNSConfig != nil {
		s.dns = r.DNSConfig
	}
	if r.PacketFilter != nil {
		s.filter = r.PacketFilter
	}
	if len(r.Peers) > 0 {
		clear(s.peers)
		for _, p := range r.Peers {
			s.peers[p.ID] = p
		}
		return
	}
	for _, id := range r.PeersRemoved {
		delete(s.peers, id)
	}
	for _, p := range r.PeersChanged {
		s.peers[p.ID] = p
	}
	for id, on := range r.OnlineChange {
		if p := s.peers[id]; p != nil {
			c := *p
			c.Online = &on
			s.peers[id] = &c
		}
	}
	for _, pc := range r.PeersChangedPatch {
		p := s.peers[pc.NodeID]
		if p == nil {
			continue
		}
		c := *p
		if pc.DERPRegion != 0 {
			c.HomeDERP = pc.DERPRegion
		}
		if pc.Endpoints != nil {
			c.Endpoints = pc.Endpoints
		}
		if pc.Key != nil {
			c.Key = *pc.Key
		}
		if pc.DiscoKey != nil {
			c.DiscoKey = *pc.DiscoKey
		}
		if pc.Online != nil {
			c.Online = pc.Online
		}
		if pc.LastSeen != nil {
			c.LastSeen = pc.LastSeen
		}
		if pc.KeyExpiry != nil {
			c.KeyExpiry = *pc.KeyExpiry
		}
		s.peers[pc.NodeID] = &c
	}
}

// Self returns the self node of the netmap.
func (s *Stream) Self() *ctrl.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.self
}

// DNS returns the last DNS configuration received.
func (s *Stream) DNS() *ctrl.DNSConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dns
}

// PacketFilter returns the last packet filter received.
func (s *Stream) PacketFilter() []ctrl.FilterRule {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.filter
}

// Peer returns a peer by ID.
func (s *Stream) Peer(id ctrl.NodeID) *ctrl.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[id]
}

// Peers returns the peers sorted by ID.
func (s *Stream) Peers() []*ctrl.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*ctrl.Node, 0, len(s.peers))
	for _, p := range s.peers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *ctrl.Node) int { return int(a.ID - b.ID) })
	return out
}

// NumPeers returns the number of peers.
func (s *Stream) NumPeers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}
