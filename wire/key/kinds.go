package key

// MachinePublic is the public half of a machine key: a device's long-lived Noise static key.
type MachinePublic struct{ k [32]byte }

// MachinePublicFromRaw32 wraps 32 raw bytes.
func MachinePublicFromRaw32(b [32]byte) MachinePublic { return MachinePublic{b} }

// Raw32 returns the raw key bytes.
func (p MachinePublic) Raw32() [32]byte { return p.k }

// IsZero reports whether p is the all-zero key, which the protocol uses for "none".
func (p MachinePublic) IsZero() bool { return p.k == [32]byte{} }

// String returns the text form, e.g. "mkey:<hex>".
func (p MachinePublic) String() string { return string(appendHex32(nil, prefixMachine, p.k)) }

// ShortString returns a short form for logs.
func (p MachinePublic) ShortString() string { return shortString(p.k) }

// MarshalText implements encoding.TextMarshaler.
func (p MachinePublic) MarshalText() ([]byte, error) {
	return appendHex32(nil, prefixMachine, p.k), nil
}

// AppendText implements encoding.TextAppender.
func (p MachinePublic) AppendText(b []byte) ([]byte, error) {
	return appendHex32(b, prefixMachine, p.k), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. An empty string is the zero key.
func (p *MachinePublic) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = MachinePublic{}
		return nil
	}
	k, err := parseHex32(prefixMachine, b)
	if err != nil {
		return err
	}
	p.k = k
	return nil
}

// ParseMachinePublic parses the text form.
func ParseMachinePublic(s string) (MachinePublic, error) {
	var p MachinePublic
	err := p.UnmarshalText([]byte(s))
	return p, err
}

// MachinePrivate is the private half of a machine key: a device's long-lived Noise static key.
type MachinePrivate struct{ k [32]byte }

// NewMachine returns a new random private key.
func NewMachine() MachinePrivate { return MachinePrivate{newPrivate()} }

// MachinePrivateFromRaw32 wraps 32 raw bytes.
func MachinePrivateFromRaw32(b [32]byte) MachinePrivate { return MachinePrivate{b} }

// Raw32 returns the raw key bytes.
func (p MachinePrivate) Raw32() [32]byte { return p.k }

// IsZero reports whether p is unset.
func (p MachinePrivate) IsZero() bool { return p.k == [32]byte{} }

// Public returns the public half.
func (p MachinePrivate) Public() MachinePublic { return MachinePublic{publicOf(p.k)} }

// MarshalText implements encoding.TextMarshaler ("privkey:<hex>").
func (p MachinePrivate) MarshalText() ([]byte, error) {
	return appendHex32(nil, prefixPrivate, p.k), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *MachinePrivate) UnmarshalText(b []byte) error {
	k, err := parseHex32(prefixPrivate, b)
	if err != nil {
		return err
	}
	p.k = k
	return nil
}

// NodePublic is the public half of a node key: the WireGuard static key of one login.
type NodePublic struct{ k [32]byte }

// NodePublicFromRaw32 wraps 32 raw bytes.
func NodePublicFromRaw32(b [32]byte) NodePublic { return NodePublic{b} }

// Raw32 returns the raw key bytes.
func (p NodePublic) Raw32() [32]byte { return p.k }

// IsZero reports whether p is the all-zero key, which the protocol uses for "none".
func (p NodePublic) IsZero() bool { return p.k == [32]byte{} }

// String returns the text form, e.g. "nodekey:<hex>".
func (p NodePublic) String() string { return string(appendHex32(nil, prefixNode, p.k)) }

// ShortString returns a short form for logs.
func (p NodePublic) ShortString() string { return shortString(p.k) }

// MarshalText implements encoding.TextMarshaler.
func (p NodePublic) MarshalText() ([]byte, error) { return appendHex32(nil, prefixNode, p.k), nil }

// AppendText implements encoding.TextAppender.
func (p NodePublic) AppendText(b []byte) ([]byte, error) { return appendHex32(b, prefixNode, p.k), nil }

// UnmarshalText implements encoding.TextUnmarshaler. An empty string is the zero key.
func (p *NodePublic) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = NodePublic{}
		return nil
	}
	k, err := parseHex32(prefixNode, b)
	if err != nil {
		return err
	}
	p.k = k
	return nil
}

// ParseNodePublic parses the text form.
func ParseNodePublic(s string) (NodePublic, error) {
	var p NodePublic
	err := p.UnmarshalText([]byte(s))
	return p, err
}

// NodePrivate is the private half of a node key: the WireGuard static key of one login.
type NodePrivate struct{ k [32]byte }

// NewNode returns a new random private key.
func NewNode() NodePrivate { return NodePrivate{newPrivate()} }

// NodePrivateFromRaw32 wraps 32 raw bytes.
func NodePrivateFromRaw32(b [32]byte) NodePrivate { return NodePrivate{b} }

// Raw32 returns the raw key bytes.
func (p NodePrivate) Raw32() [32]byte { return p.k }

// IsZero reports whether p is unset.
func (p NodePrivate) IsZero() bool { return p.k == [32]byte{} }

// Public returns the public half.
func (p NodePrivate) Public() NodePublic { return NodePublic{publicOf(p.k)} }

// MarshalText implements encoding.TextMarshaler ("privkey:<hex>").
func (p NodePrivate) MarshalText() ([]byte, error) { return appendHex32(nil, prefixPrivate, p.k), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *NodePrivate) UnmarshalText(b []byte) error {
	k, err := parseHex32(prefixPrivate, b)
	if err != nil {
		return err
	}
	p.k = k
	return nil
}

// DiscoPublic is the public half of a disco key: the path-discovery key, new at every daemon start.
type DiscoPublic struct{ k [32]byte }

// DiscoPublicFromRaw32 wraps 32 raw bytes.
func DiscoPublicFromRaw32(b [32]byte) DiscoPublic { return DiscoPublic{b} }

// Raw32 returns the raw key bytes.
func (p DiscoPublic) Raw32() [32]byte { return p.k }

// IsZero reports whether p is the all-zero key, which the protocol uses for "none".
func (p DiscoPublic) IsZero() bool { return p.k == [32]byte{} }

// String returns the text form, e.g. "discokey:<hex>".
func (p DiscoPublic) String() string { return string(appendHex32(nil, prefixDisco, p.k)) }

// ShortString returns a short form for logs.
func (p DiscoPublic) ShortString() string { return shortString(p.k) }

// MarshalText implements encoding.TextMarshaler.
func (p DiscoPublic) MarshalText() ([]byte, error) { return appendHex32(nil, prefixDisco, p.k), nil }

// AppendText implements encoding.TextAppender.
func (p DiscoPublic) AppendText(b []byte) ([]byte, error) {
	return appendHex32(b, prefixDisco, p.k), nil
}

// UnmarshalText implements encoding.TextUnmarshaler. An empty string is the zero key.
func (p *DiscoPublic) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*p = DiscoPublic{}
		return nil
	}
	k, err := parseHex32(prefixDisco, b)
	if err != nil {
		return err
	}
	p.k = k
	return nil
}

// ParseDiscoPublic parses the text form.
func ParseDiscoPublic(s string) (DiscoPublic, error) {
	var p DiscoPublic
	err := p.UnmarshalText([]byte(s))
	return p, err
}

// DiscoPrivate is the private half of a disco key: the path-discovery key, new at every daemon start.
type DiscoPrivate struct{ k [32]byte }

// NewDisco returns a new random private key.
func NewDisco() DiscoPrivate { return DiscoPrivate{newPrivate()} }

// DiscoPrivateFromRaw32 wraps 32 raw bytes.
func DiscoPrivateFromRaw32(b [32]byte) DiscoPrivate { return DiscoPrivate{b} }

// Raw32 returns the raw key bytes.
func (p DiscoPrivate) Raw32() [32]byte { return p.k }

// IsZero reports whether p is unset.
func (p DiscoPrivate) IsZero() bool { return p.k == [32]byte{} }

// Public returns the public half.
func (p DiscoPrivate) Public() DiscoPublic { return DiscoPublic{publicOf(p.k)} }

// MarshalText implements encoding.TextMarshaler ("privkey:<hex>").
func (p DiscoPrivate) MarshalText() ([]byte, error) {
	return appendHex32(nil, prefixDiscoPrv, p.k), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *DiscoPrivate) UnmarshalText(b []byte) error {
	k, err := parseHex32(prefixDiscoPrv, b)
	if err != nil {
		return err
	}
	p.k = k
	return nil
}
