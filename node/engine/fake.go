package engine

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"weft.dev/weft/node/netmap"
	"weft.dev/weft/wire/key"
)

// Fake is an Engine that moves no packets: it records what it was told and
// reports a fixed local state. The control plane runs on it in tests, and
// weftd uses it until a real data plane is configured.
type Fake struct {
	mu sync.Mutex
	// guarded by mu:
	nm      *netmap.NetworkMap
	cfg     Config
	cb      func(LocalState)
	local   LocalState
	reconfs int
}

// NewFake returns a Fake that reports local (with a fresh disco key if
// local has none) to its callback.
func NewFake(local LocalState) *Fake {
	if local.DiscoKey.IsZero() {
		local.DiscoKey = key.NewDisco().Public()
	}
	return &Fake{local: local}
}

// Reconfig records nm and cfg.
func (f *Fake) Reconfig(nm *netmap.NetworkMap, cfg Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nm, f.cfg = nm, cfg
	f.reconfs++
	return nil
}

// SetLocalStateCallback registers cb and calls it once with the fixed state.
func (f *Fake) SetLocalStateCallback(cb func(LocalState)) {
	f.mu.Lock()
	f.cb = cb
	local := f.local
	f.mu.Unlock()
	if cb != nil {
		cb(local)
	}
}

// SetLocalState changes the reported local state and notifies the callback.
func (f *Fake) SetLocalState(ls LocalState) {
	f.mu.Lock()
	f.local = ls
	cb := f.cb
	f.mu.Unlock()
	if cb != nil {
		cb(ls)
	}
}

// Ping fails: a Fake has no data plane.
func (f *Fake) Ping(ctx context.Context, ip netip.Addr, typ PingType) (PingResult, error) {
	return PingResult{IP: ip, Err: "no data plane"}, errors.New("ping: this node runs without a data plane")
}

// PeerStatus returns nothing.
func (f *Fake) PeerStatus() []PeerStatus { return nil }

// Close does nothing.
func (f *Fake) Close() error { return nil }

// Last returns the last netmap and config passed to Reconfig, and how many
// Reconfig calls there were.
func (f *Fake) Last() (*netmap.NetworkMap, Config, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nm, f.cfg, f.reconfs
}
