package ipn

import "weft.dev/weft/wire/ctrl"

// ProfileID names a login profile; it is short random hex.
type ProfileID string

// LoginProfile describes one network login kept by the daemon
// (ipn.LoginProfile upstream: same JSON names for the fields weft has).
type LoginProfile struct {
	ID ProfileID
	// Name is the user's login name on that network (e.g. "alice@example.com").
	Name string
	// NetworkProfile describes the tailnet.
	NetworkProfile NetworkProfile
	// UserProfile is the logged-in user.
	UserProfile ctrl.UserProfile
	// NodeID is this node's stable ID on that network.
	NodeID ctrl.StableNodeID
	// ControlURL is the profile's login server.
	ControlURL string
	// Nickname is Prefs.ProfileName (weft addition, omitted when empty).
	Nickname string `json:",omitempty"`
}

// NetworkProfile describes a profile's tailnet (ipn.NetworkProfile).
type NetworkProfile struct {
	MagicDNSName string
	DomainName   string
}
