package ipnlocal

import (
	"context"
	"errors"

	"weft.dev/weft/node/controlclient"
	"weft.dev/weft/node/ipn"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// Start applies `up`: new prefs (if given), WantRunning, and a login when
// the profile has no node key, the key expired, or ForceReauth is set.
func (b *Backend) Start(ctx context.Context, o StartOptions) error {
	b.mu.Lock()
	p := b.profile
	newPrefs := p.Prefs.Clone()
	if o.Prefs != nil {
		newPrefs = o.Prefs.Clone()
	}
	if newPrefs.ControlURL == "" {
		newPrefs.ControlURL = ipn.DefaultControlURL
	}
	urlChanged := newPrefs.ControlURL != p.Prefs.ControlURL
	if urlChanged && !p.NodeKey.IsZero() && !o.ForceReauth && !p.Prefs.LoggedOut {
		b.mu.Unlock()
		return ErrLoginServerChange
	}
	newPrefs.WantRunning = true
	newPrefs.LoggedOut = false
	expired := b.keyExpiredLocked()
	if urlChanged {
		// A different network: this profile's key means nothing there.
		p.NodeKey, p.OldNodeKey = key.NodePrivate{}, key.NodePrivate{}
		p.NodeID, p.Domain = "", ""
		p.UserProfile = ctrl.UserProfile{}
	}
	p.Prefs = newPrefs
	p.ControlURL = newPrefs.ControlURL
	b.saveProfileLocked()
	b.lastLoginErr = ""
	if b.cc == nil || urlChanged {
		b.startClientLocked()
	}
	if b.cc == nil {
		err := errors.New(b.lastErr)
		b.mu.Unlock()
		return err
	}
	hi := b.hostinfoLocked()
	b.cc.SetHostinfo(&hi)
	b.cc.SetPaused(false)
	switch {
	case p.NodeKey.IsZero() || o.ForceReauth || expired:
		b.authURL = ""
		b.cc.Login(controlclient.LoginOpts{AuthKey: o.AuthKey, NewKey: !p.NodeKey.IsZero()})
	case !b.loggedIn:
		b.cc.Login(controlclient.LoginOpts{AuthKey: o.AuthKey})
	}
	pc := p.Prefs.Clone()
	b.sendLocked(&ipn.Notify{Prefs: &pc})
	b.updateStateLocked()
	b.mu.Unlock()
	b.reconfigEngine()
	return nil
}

// StartLoginInteractive starts an interactive login (new node key when
// one exists), as `login` and `up --force-reauth` without a key do.
func (b *Backend) StartLoginInteractive(ctx context.Context) error {
	return b.Start(ctx, StartOptions{ForceReauth: true})
}

// EditPrefs applies a partial prefs change and returns the new prefs.
func (b *Backend) EditPrefs(ctx context.Context, mp *ipn.MaskedPrefs) (ipn.Prefs, error) {
	b.mu.Lock()
	p := b.profile
	old := p.Prefs.Clone()
	np := mp.ApplyTo(old)
	if np.ControlURL != old.ControlURL && !p.NodeKey.IsZero() && !old.LoggedOut {
		b.mu.Unlock()
		return old, ErrLoginServerChange
	}
	p.Prefs = np
	p.ControlURL = np.ControlURL
	b.saveProfileLocked()
	if b.cc != nil {
		hi := b.hostinfoLocked()
		b.cc.SetHostinfo(&hi)
		b.cc.SetPaused(!np.WantRunning)
	} else if np.WantRunning && b.shouldAutoConnectLocked() {
		b.startClientLocked()
		b.cc.Login(controlclient.LoginOpts{})
	}
	pc := np.Clone()
	b.sendLocked(&ipn.Notify{Prefs: &pc})
	b.updateStateLocked()
	b.mu.Unlock()
	b.reconfigEngine()
	return pc, nil
}

// Logout logs the current profile out: control is told (Expiry = Unix
// 123), the node key is discarded and the profile waits for a new login.
func (b *Backend) Logout(ctx context.Context) error {
	b.mu.Lock()
	cc := b.cc
	p := b.profile
	b.mu.Unlock()
	var err error
	if cc != nil {
		err = cc.Logout(ctx)
	}
	b.mu.Lock()
	p.NodeKey, p.OldNodeKey = key.NodePrivate{}, key.NodePrivate{}
	p.Prefs.LoggedOut = true
	p.Prefs.WantRunning = false
	b.saveProfileLocked()
	b.loggedIn = false
	b.nm = nil
	b.authURL = ""
	pc := p.Prefs.Clone()
	b.sendLocked(&ipn.Notify{Prefs: &pc})
	b.updateStateLocked()
	b.mu.Unlock()
	b.reconfigEngine()
	return err
}
