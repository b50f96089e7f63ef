package ctrl

import "weft.dev/weft/wire/key"

// TokenRequest is the body of POST /machine/id-token (tailcfg.TokenRequest).
type TokenRequest struct {
	CapVersion CapabilityVersion
	NodeKey    key.NodePublic
	// Audience is the "aud" claim the token should carry.
	Audience string
}

// TokenResponse answers /machine/id-token (tailcfg.TokenResponse; lower-case JSON name).
type TokenResponse struct {
	// IDToken is the signed JWT.
	IDToken string `json:"id_token"`
}
