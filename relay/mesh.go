package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

// DialFunc dials a TCP connection (mesh peers).
type DialFunc = derpclient.DialFunc

// TLSConfigFunc returns the client TLS config for a mesh peer host.
type TLSConfigFunc func(host string) *tls.Config

// meshRetryInterval matches upstream's mesh reconnect interval.
const meshRetryInterval = 5 * time.Second

// meshPeer is one outgoing mesh connection: it watches the peer's clients
// and forwards packets for them.
type meshPeer struct {
	s        *Server
	url      string
	host     string
	dialHost string
	log      *slog.Logger

	mu     sync.Mutex
	client *derpclient.Client // guarded by mu; nil while disconnected
}

func (s *Server) newMeshPeer(entry string) (*meshPeer, error) {
	mp := &meshPeer{s: s}
	if strings.Contains(entry, "://") {
		mp.url = entry
	} else {
		parts := strings.Split(entry, "/")
		if len(parts) > 2 || parts[0] == "" {
			return nil, fmt.Errorf("relay: bad mesh host %q (want host or host/dialhost)", entry)
		}
		mp.host = parts[0]
		if len(parts) == 2 {
			mp.dialHost = parts[1]
		}
		mp.url = "https://" + mp.host + "/derp"
	}
	mp.log = s.log.With("mesh", entry)
	return mp, nil
}

func (mp *meshPeer) dialOptions() derpclient.Options {
	o := derpclient.Options{MeshKey: mp.s.meshKey, Dial: mp.s.opts.MeshDial}
	if f := mp.s.opts.MeshTLS; f != nil {
		o.TLSConfig = f(mp.host)
	}
	if mp.dialHost != "" {
		base := o.Dial
		if base == nil {
			var d net.Dialer
			base = d.DialContext
		}
		dh := mp.dialHost
		o.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return base(ctx, network, net.JoinHostPort(dh, port))
		}
	}
	return o
}

// run keeps a watching connection to the peer until ctx ends or the peer
// turns out to be this server.
func (mp *meshPeer) run(ctx context.Context) {
	s := mp.s
	for ctx.Err() == nil {
		c, err := derpclient.DialOptions(ctx, mp.url, s.priv, mp.dialOptions())
		if err != nil {
			mp.log.Info("mesh connect failed", "err", err)
			sleepCtx(ctx, meshRetryInterval)
			continue
		}
		if c.ServerPublicKey() == s.pub {
			mp.log.Info("mesh peer is this server; not meshing with it")
			c.Close()
			return
		}
		err = mp.watch(ctx, c)
		if ctx.Err() == nil {
			mp.log.Info("mesh connection lost", "err", err)
			sleepCtx(ctx, meshRetryInterval)
		}
	}
}

func (mp *meshPeer) watch(ctx context.Context, c *derpclient.Client) error {
	s := mp.s
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer c.Close()
	if err := c.WatchConns(); err != nil {
		return err
	}
	mp.mu.Lock()
	mp.client = c
	mp.mu.Unlock()
	present := map[key.NodePublic]struct{}{}
	defer func() {
		mp.mu.Lock()
		mp.client = nil
		mp.mu.Unlock()
		for k := range present {
			s.removeForwarder(k, mp)
		}
	}()
	mp.log.Info("mesh connected", "peer", c.ServerPublicKey().ShortString())
	for {
		m, err := c.Recv()
		if err != nil {
			return err
		}
		switch m.Type {
		case derp.FramePeerPresent:
			present[m.Present.Key] = struct{}{}
			s.addForwarder(m.Present.Key, mp)
		case derp.FramePeerGone:
			delete(present, m.Peer)
			s.removeForwarder(m.Peer, mp)
		}
	}
}

var errMeshDown = errors.New("mesh peer not connected")

// forward sends a packet for dst over the mesh connection.
func (mp *meshPeer) forward(src, dst key.NodePublic, pkt []byte) error {
	mp.mu.Lock()
	c := mp.client
	mp.mu.Unlock()
	if c == nil {
		return errMeshDown
	}
	return c.ForwardPacket(src, dst, pkt)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
