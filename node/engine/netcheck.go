package engine

import (
	"context"
	"errors"
	"time"
)

// Netchecker is implemented by engines that can measure the local network
// (STUN, DERP latency) for `netcheck`. It is optional so that existing
// Engine implementations keep compiling.
type Netchecker interface {
	Netcheck(ctx context.Context) (*NetcheckReport, error)
}

// NetcheckReport is the result of a network measurement.
type NetcheckReport struct {
	UDP, IPv4, IPv6       bool
	MappingVariesByDestIP *bool
	PreferredDERP         int
	RegionLatency         map[int]time.Duration
	GlobalV4, GlobalV6    string
}

// Netcheck fails: a Fake has no data plane.
func (f *Fake) Netcheck(ctx context.Context) (*NetcheckReport, error) {
	return nil, errors.New("netcheck: this node runs without a data plane")
}
