package ctrl

import "weft.dev/weft/wire/key"

// OverTLSPublicKeyResponse is the body of GET /key?v=<capver>
// (tailcfg.OverTLSPublicKeyResponse; lower-case JSON names).
type OverTLSPublicKeyResponse struct {
	// LegacyPublicKey is the old NaCl-box control key. weft sends the zero
	// key ("mkey:" + 64 zeros), as headscale does; ts2021 does not use it.
	LegacyPublicKey key.MachinePublic `json:"legacyPublicKey"`
	// PublicKey is the server's Noise static public key. Must be non-zero.
	PublicKey key.MachinePublic `json:"publicKey"`
}

// EarlyNoise is the JSON of the ts2021 early payload (tailcfg.EarlyNoise),
// sent by the server before HTTP/2 starts.
type EarlyNoise struct {
	// NodeKeyChallenge is a random challenge key; 1.102 clients read it and ignore it.
	NodeKeyChallenge key.ChallengePublic `json:"nodeKeyChallenge"`
}

// EarlyPayloadMagic starts the early payload: it cannot begin an HTTP/2 frame,
// so a client can tell the two apart by peeking at the first bytes.
const EarlyPayloadMagic = "\xff\xff\xffTS"
