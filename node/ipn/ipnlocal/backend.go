package ipnlocal

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"weft.dev/weft/node/controlclient"
	"weft.dev/weft/node/engine"
	"weft.dev/weft/node/ipn"
	"weft.dev/weft/node/netmap"
	"weft.dev/weft/node/state"
	"weft.dev/weft/wire/ctrl"
)

// Options configure a Backend.
type Options struct {
	// Store holds the persisted state.
	Store *state.Store
	// Engine is the data plane.
	Engine engine.Engine
	// Logger logs; nil discards.
	Logger *slog.Logger
	// Now tells the time; nil is time.Now.
	Now func() time.Time
	// Version is the daemon version reported in status and Hostinfo.
	Version string
	// TUN says whether a kernel TUN device is used (status' TUN field).
	TUN bool
	// Hostinfo returns the host's base Hostinfo (OS, host name, …); prefs
	// are layered on top. Nil means a minimal one.
	Hostinfo func() ctrl.Hostinfo
	// Ephemeral asks control to delete the node when it goes away.
	Ephemeral bool
	// Health are fixed problems to report (e.g. flags of later features).
	Health []string
	// ControlOptions, if set, edits each control client's options (tests
	// shorten backoff and timeouts, or dial fakes).
	ControlOptions func(*controlclient.Options)
}

// StartOptions are what `up` asks for.
type StartOptions struct {
	// Prefs are the complete new preferences; nil keeps the current ones.
	Prefs *ipn.Prefs
	// AuthKey logs in with a pre-auth key.
	AuthKey string
	// ForceReauth logs in again with a new node key.
	ForceReauth bool
}

// Backend is the daemon's control-plane owner.
type Backend struct {
	opts  Options
	log   *slog.Logger
	store *state.Store
	eng   engine.Engine

	engMu      sync.Mutex // serialises Engine.Reconfig
	engApplied uint64     // guarded by engMu: last applied generation

	mu sync.Mutex
	// guarded by mu:
	profile      *state.Profile
	cc           *controlclient.Auto
	ccGen        uint64
	loggedIn     bool // cc reported LoginFinished for the current key
	state        ipn.State
	nm           *netmap.NetworkMap
	authURL      string
	lastErr      string // latest control error
	lastLoginErr string // latest permanent login failure
	ctrlHealth   []string
	local        engine.LocalState
	watchers     map[int64]*watcher
	nextWatcher  int64
	expiryTimer  *time.Timer
	engGen       uint64
	lastEngNM    *netmap.NetworkMap
	lastEngCfg   engine.Config
	reachable    bool // engine.Reachability's last report
	closed       bool
}

// New returns a Backend for the store's current profile (a fresh, unsaved
// one when there is none). Call Init to connect to control.
func New(opts Options) (*Backend, error) {
	if opts.Store == nil || opts.Engine == nil {
		return nil, fmt.Errorf("ipnlocal: Store and Engine are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Hostinfo == nil {
		opts.Hostinfo = func() ctrl.Hostinfo { return ctrl.Hostinfo{OS: "linux"} }
	}
	b := &Backend{
		opts: opts, log: opts.Logger, store: opts.Store, eng: opts.Engine,
		watchers: map[int64]*watcher{},
	}
	f := opts.Store.Snapshot()
	if p := f.Profiles[f.CurrentProfile]; p != nil {
		b.profile = p.Clone()
	} else {
		b.profile = &state.Profile{ID: state.NewProfileID(), Prefs: ipn.NewPrefs()}
	}
	return b, nil
}

// Init registers with the engine and, when the current profile is logged
// in and wants to run, reconnects to control without re-authenticating.
func (b *Backend) Init() {
	b.eng.SetLocalStateCallback(b.onLocalState)
	if r, ok := b.eng.(engine.Reachability); ok {
		r.SetReachableCallback(b.onReachable)
	}
	b.mu.Lock()
	if b.shouldAutoConnectLocked() {
		b.startClientLocked()
		b.cc.Login(controlclient.LoginOpts{})
	}
	b.updateStateLocked()
	b.mu.Unlock()
	b.reconfigEngine()
}

// Shutdown stops the control client and the expiry timer.
func (b *Backend) Shutdown() {
	b.mu.Lock()
	b.closed = true
	cc := b.cc
	b.cc = nil
	b.ccGen++
	if b.expiryTimer != nil {
		b.expiryTimer.Stop()
	}
	for id, w := range b.watchers {
		w.dropped = true
		close(w.ch)
		delete(b.watchers, id)
	}
	b.mu.Unlock()
	if cc != nil {
		cc.Shutdown()
	}
}

func (b *Backend) shouldAutoConnectLocked() bool {
	p := b.profile
	return p.Prefs.ControlURL != "" && !p.NodeKey.IsZero() && p.Prefs.WantRunning && !p.Prefs.LoggedOut
}

// startClientLocked replaces the control client with one for the current
// profile. The old one is shut down in the background.
func (b *Backend) startClientLocked() {
	b.stopClientLocked()
	p := b.profile
	hi := b.hostinfoLocked()
	gen := b.ccGen
	opts := controlclient.Options{
		ServerURL:  p.Prefs.ControlURL,
		MachineKey: b.store.Snapshot().MachineKey,
		Persist: controlclient.Persist{
			PrivateNodeKey: p.NodeKey, OldPrivateNodeKey: p.OldNodeKey, UserProfile: p.UserProfile,
		},
		Hostinfo:  &hi,
		Ephemeral: b.opts.Ephemeral,
		Logger:    b.log,
		Now:       b.opts.Now,
		Observer: controlclient.ObserverFunc(func(s controlclient.Status) {
			b.setControlClientStatus(gen, s)
		}),
	}
	if b.opts.ControlOptions != nil {
		b.opts.ControlOptions(&opts)
	}
	cc, err := controlclient.New(opts)
	if err != nil {
		b.lastErr = err.Error()
		b.log.Error("control client", "err", err)
		return
	}
	b.cc = cc
	b.loggedIn = false
	cc.SetPaused(!p.Prefs.WantRunning)
	cc.UpdateLocalState(b.local)
	cc.Start()
}

func (b *Backend) stopClientLocked() {
	b.ccGen++
	if b.cc != nil {
		go b.cc.Shutdown()
		b.cc = nil
	}
	b.loggedIn = false
	b.nm = nil
	b.authURL = ""
	b.lastErr = ""
	b.ctrlHealth = nil
}

// onLocalState forwards the engine's endpoints and NetInfo to control.
func (b *Backend) onLocalState(ls engine.LocalState) {
	b.mu.Lock()
	b.local = ls
	cc := b.cc
	b.mu.Unlock()
	if cc != nil {
		cc.UpdateLocalState(ls)
	}
}

// onReachable records the engine's reachability and re-evaluates the state.
func (b *Backend) onReachable(r bool) {
	b.mu.Lock()
	b.reachable = r
	b.updateStateLocked()
	b.mu.Unlock()
	b.reconfigEngine()
}

// reachableLocked reports whether peers can reach this node; engines that
// cannot tell are taken as reachable.
func (b *Backend) reachableLocked() bool {
	if _, ok := b.eng.(engine.Reachability); !ok {
		return true
	}
	return b.reachable
}

// hostinfoLocked is the base Hostinfo with the prefs applied.
func (b *Backend) hostinfoLocked() ctrl.Hostinfo {
	hi := b.opts.Hostinfo()
	p := b.profile.Prefs
	if p.Hostname != "" {
		hi.Hostname = p.Hostname
	}
	if hi.IPNVersion == "" {
		hi.IPNVersion = b.opts.Version
	}
	hi.RoutableIPs = slices.Clone(p.AdvertiseRoutes)
	hi.RequestTags = slices.Clone(p.AdvertiseTags)
	hi.ShieldsUp = p.ShieldsUp
	hi.ExitNodeID = p.ExitNodeID
	if !b.opts.TUN {
		t := true
		hi.Userspace = &t
		hi.UserspaceRouter = &t
	}
	hi.Raw = nil
	return hi
}

// setControlClientStatus handles a report of the control client whose
// generation is gen; reports of replaced clients are dropped.
func (b *Backend) setControlClientStatus(gen uint64, s controlclient.Status) {
	b.mu.Lock()
	if gen != b.ccGen || b.closed {
		b.mu.Unlock()
		return
	}
	if s.Err != nil {
		b.lastErr = s.Err.Error()
		if s.LoginFailed {
			b.lastLoginErr = b.lastErr
			msg := b.lastErr
			b.sendLocked(&ipn.Notify{ErrMessage: &msg})
		}
	}
	if s.AuthURL != "" {
		b.authURL = s.AuthURL
		u := s.AuthURL
		b.sendLocked(&ipn.Notify{BrowseToURL: &u})
	}
	if s.PopBrowserURL != "" {
		u := s.PopBrowserURL
		b.sendLocked(&ipn.Notify{BrowseToURL: &u})
	}
	if s.Persist != nil {
		p := b.profile
		p.NodeKey, p.OldNodeKey = s.Persist.PrivateNodeKey, s.Persist.OldPrivateNodeKey
		if s.Persist.UserProfile.LoginName != "" {
			p.UserProfile = s.Persist.UserProfile
		}
		b.saveProfileLocked()
	}
	if s.LoginFinished {
		b.loggedIn = true
		b.authURL, b.lastErr, b.lastLoginErr = "", "", ""
		b.nm = nil // the next stream starts from a full map
		b.sendLocked(&ipn.Notify{LoginFinished: &struct{}{}})
	}
	if s.LoggedOut {
		b.loggedIn = false
		b.nm = nil
	}
	if s.Health != nil {
		b.ctrlHealth = s.Health
	}
	if s.NetMap != nil {
		b.nm = s.NetMap
		b.lastErr = ""
		b.noteNetMapLocked(s.NetMap)
		b.sendLocked(&ipn.Notify{NetMap: s.NetMap})
	}
	b.updateStateLocked()
	b.mu.Unlock()
	b.reconfigEngine()
}

// noteNetMapLocked records the node's identity from a netmap in the
// profile and arms the key-expiry timer.
func (b *Backend) noteNetMapLocked(nm *netmap.NetworkMap) {
	p := b.profile
	changed := false
	if self := nm.SelfNode; self != nil {
		if self.StableID != "" && self.StableID != p.NodeID {
			p.NodeID, changed = self.StableID, true
		}
		if up, ok := nm.UserProfiles[self.User]; ok && p.UserProfile.LoginName == "" {
			p.UserProfile, changed = up, true
		}
	}
	if d := firstNonEmpty(nm.MagicDNSSuffix(), nm.Domain); d != "" && d != p.Domain {
		p.Domain, changed = d, true
	}
	if p.Prefs.ExitNodeIP.IsValid() {
		if peer := nm.PeerByIP(p.Prefs.ExitNodeIP); peer != nil && p.Prefs.ExitNodeID != peer.StableID {
			p.Prefs.ExitNodeID, changed = peer.StableID, true
		}
	}
	if changed {
		b.saveProfileLocked()
	}
	if b.expiryTimer != nil {
		b.expiryTimer.Stop()
		b.expiryTimer = nil
	}
	if !nm.Expiry.IsZero() {
		if d := nm.Expiry.Sub(b.opts.Now()); d > 0 {
			b.expiryTimer = time.AfterFunc(d+time.Second, b.recheckState)
		}
	}
}

func (b *Backend) recheckState() {
	b.mu.Lock()
	b.updateStateLocked()
	b.mu.Unlock()
	b.reconfigEngine()
}

// keyExpiredLocked reports whether the self node's key has expired.
func (b *Backend) keyExpiredLocked() bool {
	if b.nm == nil || b.nm.SelfNode == nil {
		return false
	}
	if b.nm.SelfNode.Expired {
		return true
	}
	return !b.nm.Expiry.IsZero() && !b.nm.Expiry.After(b.opts.Now())
}

// nextStateLocked derives the state (upstream ipnlocal nextStateLocked).
func (b *Backend) nextStateLocked() ipn.State {
	p := b.profile
	switch {
	case p.NodeKey.IsZero() || p.Prefs.LoggedOut:
		return ipn.NeedsLogin
	case !p.Prefs.WantRunning:
		return ipn.Stopped
	case b.cc != nil && !b.loggedIn && b.authURL != "":
		return ipn.NeedsLogin
	case b.nm == nil || b.nm.SelfNode == nil:
		return ipn.Starting
	case !b.nm.SelfNode.MachineAuthorized:
		return ipn.NeedsMachineAuth
	case b.keyExpiredLocked():
		return ipn.NeedsLogin
	case b.state != ipn.Running && !b.reachableLocked():
		// tailscaled enters Running once a DERP or peer path is live; a
		// later DERP reconnect does not drop it back to Starting.
		return ipn.Starting
	}
	return ipn.Running
}

// updateStateLocked recomputes the state and announces a change.
func (b *Backend) updateStateLocked() {
	st := b.nextStateLocked()
	if st == b.state {
		return
	}
	b.log.Info("backend state", "from", b.state.String(), "to", st.String())
	b.state = st
	b.sendLocked(&ipn.Notify{State: &st})
	b.engGen++
}

// engineInputsLocked is what the engine should run with now.
func (b *Backend) engineInputsLocked() (*netmap.NetworkMap, engine.Config) {
	switch b.state {
	case ipn.Running, ipn.Starting:
	default:
		return nil, engine.Config{}
	}
	if b.nm == nil {
		return nil, engine.Config{}
	}
	p := b.profile.Prefs
	return b.nm, engine.Config{
		PrivateKey:      b.profile.NodeKey,
		AcceptRoutes:    p.RouteAll,
		ExitNode:        p.ExitNodeID,
		ShieldsUp:       p.ShieldsUp,
		AdvertiseRoutes: slices.Clone(p.AdvertiseRoutes),
	}
}

// reconfigEngine applies the current inputs to the engine if they changed.
// It runs outside b.mu so that an engine calling back (local state) cannot
// deadlock; generations keep concurrent calls in order.
func (b *Backend) reconfigEngine() {
	b.mu.Lock()
	nm, cfg := b.engineInputsLocked()
	if nm == b.lastEngNM && cfgEqual(cfg, b.lastEngCfg) {
		b.mu.Unlock()
		return
	}
	b.lastEngNM, b.lastEngCfg = nm, cfg
	b.engGen++
	gen := b.engGen
	b.mu.Unlock()

	b.engMu.Lock()
	defer b.engMu.Unlock()
	if gen <= b.engApplied {
		return
	}
	b.engApplied = gen
	if err := b.eng.Reconfig(nm, cfg); err != nil {
		b.log.Error("engine reconfig", "err", err)
		b.mu.Lock()
		b.lastErr = "data plane: " + err.Error()
		b.mu.Unlock()
	}
}

func cfgEqual(a, c engine.Config) bool {
	return a.PrivateKey == c.PrivateKey && a.AcceptRoutes == c.AcceptRoutes && a.ExitNode == c.ExitNode &&
		a.ShieldsUp == c.ShieldsUp && slices.Equal(a.AdvertiseRoutes, c.AdvertiseRoutes)
}

// saveProfileLocked writes the current profile and makes it current.
func (b *Backend) saveProfileLocked() {
	p := b.profile.Clone()
	err := b.store.Update(context.Background(), func(f *state.File) error {
		f.Profiles[p.ID] = p
		f.CurrentProfile = p.ID
		return nil
	})
	if err != nil {
		b.log.Error("save state", "err", err)
		b.lastErr = "saving state: " + err.Error()
	}
}

// State returns the backend state.
func (b *Backend) State() ipn.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Prefs returns the current profile's preferences.
func (b *Backend) Prefs() ipn.Prefs {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.profile.Prefs.Clone()
}

// NetMap returns the latest netmap (nil if none).
func (b *Backend) NetMap() *netmap.NetworkMap {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nm
}

// ControlStats returns the control client's counters, or nil.
func (b *Backend) ControlStats() *controlclient.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cc == nil {
		return nil
	}
	return b.cc.Stats()
}

// Hostinfo returns the Hostinfo sent to control.
func (b *Backend) Hostinfo() ctrl.Hostinfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	hi := b.hostinfoLocked()
	if b.local.NetInfo != nil {
		hi.NetInfo = b.local.NetInfo
	}
	return hi
}
