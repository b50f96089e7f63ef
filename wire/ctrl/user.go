package ctrl

import "time"

// User is the account a node belongs to, as sent in RegisterResponse (tailcfg.User).
type User struct {
	ID            UserID
	DisplayName   string
	ProfilePicURL string    `json:",omitzero"`
	Created       time.Time `json:",omitzero"`
}

// Login is the identity-provider login that authorised a registration
// (tailcfg.Login). LoginName and DisplayName become the client's local profile.
type Login struct {
	ID            LoginID
	Provider      string
	LoginName     string
	DisplayName   string
	ProfilePicURL string `json:",omitzero"`
}

// UserProfile describes a user for display in a MapResponse (tailcfg.UserProfile).
// Every Node.User and Node.Sharer a client sees needs one.
type UserProfile struct {
	ID            UserID
	LoginName     string
	DisplayName   string
	ProfilePicURL string `json:",omitzero"`
	// Groups are policy groups containing the user, sorted.
	Groups []string `json:",omitempty"`
}
