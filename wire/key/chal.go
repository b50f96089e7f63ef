package key

// ChallengePublic is the node-key challenge sent in the ts2021 early payload
// ("chalpub:"). The 1.102 client reads it but does not use it.
type ChallengePublic struct{ k [32]byte }

// NewChallenge returns a random challenge public key.
func NewChallenge() ChallengePublic { return ChallengePublic{publicOf(newPrivate())} }

// IsZero reports whether c is unset.
func (c ChallengePublic) IsZero() bool { return c.k == [32]byte{} }

// String returns the text form.
func (c ChallengePublic) String() string { return string(appendHex32(nil, prefixChal, c.k)) }

// MarshalText implements encoding.TextMarshaler.
func (c ChallengePublic) MarshalText() ([]byte, error) { return appendHex32(nil, prefixChal, c.k), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *ChallengePublic) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*c = ChallengePublic{}
		return nil
	}
	k, err := parseHex32(prefixChal, b)
	if err != nil {
		return err
	}
	c.k = k
	return nil
}
