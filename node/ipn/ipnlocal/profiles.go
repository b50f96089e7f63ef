package ipnlocal

import (
	"context"
	"fmt"
	"strings"

	"weft.dev/weft/node/controlclient"
	"weft.dev/weft/node/ipn"
	"weft.dev/weft/node/state"
)

// CurrentProfile describes the profile in use.
func (b *Backend) CurrentProfile() ipn.LoginProfile {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.profile.LoginProfile()
}

// Profiles lists the profiles that have logged in at least once, plus the
// current one.
func (b *Backend) Profiles() []ipn.LoginProfile {
	b.mu.Lock()
	cur := b.profile.ID
	b.mu.Unlock()
	var out []ipn.LoginProfile
	for _, p := range b.store.Snapshot().SortedProfiles() {
		if p.UserProfile.LoginName == "" && p.ID != cur {
			continue
		}
		out = append(out, p.LoginProfile())
	}
	return out
}

// FindProfile resolves a `switch` argument: a profile ID, a login name, a
// nickname or a tailnet domain. Ambiguous names are an error listing IDs.
func (b *Backend) FindProfile(name string) (ipn.ProfileID, error) {
	var hits []ipn.LoginProfile
	for _, p := range b.Profiles() {
		if string(p.ID) == name {
			return p.ID, nil
		}
		if p.Name == name || p.Nickname == name || p.NetworkProfile.DomainName == name || p.ControlURL == name {
			hits = append(hits, p)
		}
	}
	switch len(hits) {
	case 0:
		return "", fmt.Errorf("%w %q; list them with: weft switch --list", ErrNoProfile, name)
	case 1:
		return hits[0].ID, nil
	}
	var ids []string
	for _, h := range hits {
		ids = append(ids, string(h.ID))
	}
	return "", fmt.Errorf("profile name %q is ambiguous: use one of the IDs %s (see weft switch --list)", name, strings.Join(ids, ", "))
}

// SwitchProfile makes id current. If it is logged in and wants to run it
// reconnects with its own node key: no re-authentication.
func (b *Backend) SwitchProfile(ctx context.Context, id ipn.ProfileID) error {
	f := b.store.Snapshot()
	np := f.Profiles[id]
	if np == nil {
		return fmt.Errorf("%w %q", ErrNoProfile, id)
	}
	b.mu.Lock()
	if b.profile.ID == id {
		b.mu.Unlock()
		return nil
	}
	b.stopClientLocked()
	b.dropUnusedProfileLocked()
	b.profile = np.Clone()
	b.saveProfileLocked()
	if b.shouldAutoConnectLocked() {
		b.startClientLocked()
		b.cc.Login(controlclient.LoginOpts{})
	}
	pc := b.profile.Prefs.Clone()
	b.sendLocked(&ipn.Notify{Prefs: &pc})
	b.updateStateLocked()
	b.mu.Unlock()
	b.reconfigEngine()
	return nil
}

// NewProfile switches to a new empty profile, for `login` to another
// network. The previous profile keeps its login.
func (b *Backend) NewProfile(ctx context.Context) (ipn.LoginProfile, error) {
	b.mu.Lock()
	defer func() { b.reconfigEngine() }()
	defer b.mu.Unlock()
	b.stopClientLocked()
	b.dropUnusedProfileLocked()
	var np *state.Profile
	err := b.store.Update(ctx, func(f *state.File) error {
		np = f.NewProfile(ipn.NewPrefs())
		np.Prefs.OperatorUser = b.profile.Prefs.OperatorUser
		f.CurrentProfile = np.ID
		return nil
	})
	if err != nil {
		return ipn.LoginProfile{}, err
	}
	b.profile = np.Clone()
	pc := b.profile.Prefs.Clone()
	b.sendLocked(&ipn.Notify{Prefs: &pc})
	b.updateStateLocked()
	return b.profile.LoginProfile(), nil
}

// dropUnusedProfileLocked deletes the current profile from the store when
// it never logged in, so abandoned `login` attempts do not pile up.
func (b *Backend) dropUnusedProfileLocked() {
	p := b.profile
	if p.UserProfile.LoginName != "" || !p.NodeKey.IsZero() {
		return
	}
	id := p.ID
	b.store.Update(context.Background(), func(f *state.File) error {
		delete(f.Profiles, id)
		if f.CurrentProfile == id {
			f.CurrentProfile = ""
		}
		return nil
	})
}
