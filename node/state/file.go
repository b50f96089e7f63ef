package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"weft.dev/weft/node/ipn"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// CurrentVersion is the format version this code writes. Older versions
// are migrated on read; newer ones are refused (a downgrade must not drop
// fields it does not know).
const CurrentVersion = 1

// maxStateSize caps a state document; a real one is a few KiB per profile.
const maxStateSize = 16 << 20

// File is the whole persisted state.
type File struct {
	// Version is the format version (CurrentVersion).
	Version int
	// MachineKey is the device's Noise key, shared by all profiles.
	MachineKey key.MachinePrivate
	// CurrentProfile is the profile in use; "" before the first one exists.
	CurrentProfile ipn.ProfileID `json:",omitempty"`
	// Profiles are the network logins, by ID.
	Profiles map[ipn.ProfileID]*Profile
}

// Profile is one network login.
type Profile struct {
	ID ipn.ProfileID
	// ControlURL is the login server of this profile.
	ControlURL string
	// NodeKey is the node key; zero before the first login and after logout.
	NodeKey key.NodePrivate
	// OldNodeKey is the key NodeKey replaced, kept until the rotation is
	// confirmed by control.
	OldNodeKey key.NodePrivate `json:",omitzero"`
	// UserProfile is the logged-in user (from the register answer).
	UserProfile ctrl.UserProfile
	// NodeID is the node's stable ID on this network.
	NodeID ctrl.StableNodeID `json:",omitempty"`
	// Domain is the tailnet's MagicDNS domain, for display.
	Domain string `json:",omitempty"`
	// Prefs are the user's preferences for this profile.
	Prefs ipn.Prefs
}

// Clone returns a deep copy.
func (p *Profile) Clone() *Profile {
	c := *p
	c.Prefs = p.Prefs.Clone()
	c.UserProfile.Groups = slices.Clone(p.UserProfile.Groups)
	return &c
}

// LoginProfile returns the public description of p.
func (p *Profile) LoginProfile() ipn.LoginProfile {
	return ipn.LoginProfile{
		ID:             p.ID,
		Name:           p.UserProfile.LoginName,
		NetworkProfile: ipn.NetworkProfile{MagicDNSName: p.Domain, DomainName: p.Domain},
		UserProfile:    p.UserProfile,
		NodeID:         p.NodeID,
		ControlURL:     p.Prefs.ControlURL,
		Nickname:       p.Prefs.ProfileName,
	}
}

// Clone returns a deep copy.
func (f *File) Clone() *File {
	c := *f
	c.Profiles = make(map[ipn.ProfileID]*Profile, len(f.Profiles))
	for id, p := range f.Profiles {
		c.Profiles[id] = p.Clone()
	}
	return &c
}

// SortedProfiles returns the profiles ordered by ID.
func (f *File) SortedProfiles() []*Profile {
	ids := slices.Sorted(maps.Keys(f.Profiles))
	out := make([]*Profile, 0, len(ids))
	for _, id := range ids {
		out = append(out, f.Profiles[id])
	}
	return out
}

// ErrCorrupt wraps every decoding failure of a stored state.
var ErrCorrupt = errors.New("state is corrupt or truncated")

// Decode parses a stored state. It is hostile-input code: the document is
// size-capped, must be exactly one JSON object of a known version, and its
// profile table must be consistent.
func Decode(b []byte) (*File, error) {
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("%w: %d bytes exceeds the %d-byte limit", ErrCorrupt, len(b), maxStateSize)
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty document", ErrCorrupt)
	}
	var probe struct{ Version *int }
	if err := json.Unmarshal(trimmed, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if probe.Version == nil {
		return nil, fmt.Errorf("%w: no Version field", ErrCorrupt)
	}
	switch v := *probe.Version; {
	case v < 1:
		return nil, fmt.Errorf("%w: invalid Version %d", ErrCorrupt, v)
	case v > CurrentVersion:
		return nil, fmt.Errorf("state format version %d is newer than this weftd understands (%d); run a newer weftd", v, CurrentVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON document", ErrCorrupt)
	}
	if f.MachineKey.IsZero() {
		return nil, fmt.Errorf("%w: no MachineKey", ErrCorrupt)
	}
	if f.Profiles == nil {
		f.Profiles = map[ipn.ProfileID]*Profile{}
	}
	for id, p := range f.Profiles {
		if p == nil {
			return nil, fmt.Errorf("%w: profile %q is null", ErrCorrupt, id)
		}
		if p.ID != id {
			return nil, fmt.Errorf("%w: profile stored under %q has ID %q", ErrCorrupt, id, p.ID)
		}
	}
	if f.CurrentProfile != "" && f.Profiles[f.CurrentProfile] == nil {
		return nil, fmt.Errorf("%w: current profile %q does not exist", ErrCorrupt, f.CurrentProfile)
	}
	return &f, nil
}

// Encode returns the JSON document for f (indented: people read it).
func Encode(f *File) ([]byte, error) {
	c := *f
	c.Version = CurrentVersion
	b, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return append(b, '\n'), nil
}

// NewProfile adds an empty profile with a fresh unique ID and prefs, and
// returns it (the caller decides whether it becomes current).
func (f *File) NewProfile(prefs ipn.Prefs) *Profile {
	id := NewProfileID()
	for f.Profiles[id] != nil {
		id = NewProfileID()
	}
	p := &Profile{ID: id, ControlURL: prefs.ControlURL, Prefs: prefs.Clone()}
	if f.Profiles == nil {
		f.Profiles = map[ipn.ProfileID]*Profile{}
	}
	f.Profiles[id] = p
	return p
}
