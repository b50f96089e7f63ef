package ctrl

import (
	"time"

	"weft.dev/weft/wire/key"
)

// RegisterRequest is the body of POST /machine/register (tailcfg.RegisterRequest).
// See control.md §4 for how a server decides between login, restart, rotation
// and logout.
type RegisterRequest struct {
	// Version is the client's capability version (142 for 1.102).
	Version CapabilityVersion
	// NodeKey is the key being registered.
	NodeKey key.NodePublic
	// OldNodeKey is the previous key on rotation; the zero key (always sent) otherwise.
	OldNodeKey key.NodePublic
	// NLKey is the tailnet-lock public key ("nlpub:<hex>"); kept as text since
	// weft does not implement tailnet lock. Omitted when empty, because
	// tailcfg rejects "" for this field.
	NLKey string `json:",omitempty"`
	// Auth carries the pre-auth key; absent on restart and interactive login.
	Auth *RegisterResponseAuth `json:",omitempty"`
	// Expiry is the requested key expiry: zero normally, a past time (Unix 123
	// from 1.102) on logout, a future time to expire sooner.
	Expiry time.Time
	// Followup is the AuthURL the client waits on, or "".
	Followup string
	// Hostinfo describes the client host.
	Hostinfo *Hostinfo
	// Ephemeral asks for deletion when the node goes inactive.
	Ephemeral bool `json:",omitempty"`
	// NodeKeySignature is the tailnet-lock signature for the new key (null normally).
	NodeKeySignature []byte
	// SignatureType, Timestamp, DeviceCert and Signature are only sent with
	// device certificates (Windows/macOS policy). SignatureType is text on the
	// wire ("signature-v2"; tailcfg.SignatureType is a TextMarshaler).
	SignatureType string     `json:",omitempty"`
	Timestamp     *time.Time `json:",omitempty"`
	DeviceCert    []byte     `json:",omitempty"`
	Signature     []byte     `json:",omitempty"`
	// Tailnet names the tailnet the client is told to join by system policy.
	Tailnet string `json:",omitempty"`
}

// RegisterResponseAuth is RegisterRequest.Auth (tailcfg.RegisterResponseAuth;
// the upstream name is historical).
type RegisterResponseAuth struct {
	// Oauth2Token is only sent by pre-1.66 Android clients.
	Oauth2Token *Oauth2Token `json:",omitempty"`
	// AuthKey is the pre-auth key given with --authkey.
	AuthKey string `json:",omitempty"`
}

// Oauth2Token is an OAuth2 token as old Android clients send it (the shape of
// golang.org/x/oauth2.Token; lower-case JSON names).
type Oauth2Token struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// RegisterResponse answers /machine/register (tailcfg.RegisterResponse).
// Always send it with status 200; failures go in Error.
type RegisterResponse struct {
	User  User
	Login Login
	// NodeKeyExpired tells the client its presented key is expired.
	NodeKeyExpired bool
	// MachineAuthorized is only logged by the client; the self Node's
	// MachineAuthorized in the map is what counts.
	MachineAuthorized bool
	// AuthURL, when non-empty, is where the user must go to finish login.
	AuthURL string
	// NodeKeySignature asks the client to re-sign (tailnet lock); leave nil.
	NodeKeySignature []byte
	// Error, when non-empty, is shown to the user and every other field is ignored.
	Error string
}
