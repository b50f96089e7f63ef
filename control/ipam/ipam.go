package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// Default prefixes, the ones official clients treat as Tailscale addresses.
var (
	DefaultPrefix4 = netip.MustParsePrefix("100.64.0.0/10")
	DefaultPrefix6 = netip.MustParsePrefix("fd7a:115c:a1e0::/48")
)

// Addresses that must never be handed out: the MagicDNS resolver
// (100.100.100.100 and fd7a:115c:a1e0::53) and the ChromeOS container range
// 100.115.92.0/23 that Tailscale also skips.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("100.100.100.100/32"),
	netip.MustParsePrefix("100.115.92.0/23"),
	netip.MustParsePrefix("fd7a:115c:a1e0::53/128"),
}

// ErrExhausted is returned when a prefix has no free address left.
var ErrExhausted = errors.New("address pool exhausted")

// Allocator hands out unique addresses from a v4 and a v6 prefix. A prefix
// that is not valid (the zero Prefix) disables that family.
type Allocator struct {
	pools [2]pool // 0: IPv4, 1: IPv6
}

type pool struct {
	prefix netip.Prefix
	used   map[netip.Addr]bool
	next   netip.Addr // where the next search starts
}

// New returns an allocator for the given prefixes. Either may be the zero
// Prefix to disable that family, but not both.
func New(p4, p6 netip.Prefix) (*Allocator, error) {
	if !p4.IsValid() && !p6.IsValid() {
		return nil, errors.New("ipam: need at least one of an IPv4 and an IPv6 prefix")
	}
	if p4.IsValid() && !p4.Addr().Is4() {
		return nil, fmt.Errorf("ipam: %s is not an IPv4 prefix", p4)
	}
	if p6.IsValid() && (!p6.Addr().Is6() || p6.Addr().Is4In6()) {
		return nil, fmt.Errorf("ipam: %s is not an IPv6 prefix", p6)
	}
	a := &Allocator{}
	for i, p := range []netip.Prefix{p4, p6} {
		if !p.IsValid() {
			continue
		}
		p = p.Masked()
		if p.Bits() > p.Addr().BitLen()-2 {
			return nil, fmt.Errorf("ipam: prefix %s is too small", p)
		}
		a.pools[i] = pool{prefix: p, used: make(map[netip.Addr]bool), next: p.Addr().Next()}
	}
	return a, nil
}

// Prefix4 returns the IPv4 prefix (zero if disabled).
func (a *Allocator) Prefix4() netip.Prefix { return a.pools[0].prefix }

// Prefix6 returns the IPv6 prefix (zero if disabled).
func (a *Allocator) Prefix6() netip.Prefix { return a.pools[1].prefix }

func (a *Allocator) poolFor(ip netip.Addr) *pool {
	if ip.Is4() {
		return &a.pools[0]
	}
	return &a.pools[1]
}

// Reserve marks ip as used (for addresses loaded from the store or pinned by
// an admin). It fails if ip is already used, reserved, or outside the pool's
// prefix — unless the family is configured with another prefix, in which
// case addresses from before a prefix change are still honoured when
// allowOutside is true.
func (a *Allocator) Reserve(ip netip.Addr, allowOutside bool) error {
	if !ip.IsValid() {
		return nil
	}
	p := a.poolFor(ip)
	if p.used == nil {
		p.used = make(map[netip.Addr]bool)
	}
	if !allowOutside {
		if !p.prefix.IsValid() || !p.prefix.Contains(ip) {
			return fmt.Errorf("address %s is outside the tailnet prefix %s", ip, p.prefix)
		}
		if isReserved(ip) || !usable(p.prefix, ip) {
			return fmt.Errorf("address %s is reserved", ip)
		}
	}
	if p.used[ip] {
		return fmt.Errorf("address %s is already in use", ip)
	}
	p.used[ip] = true
	return nil
}

// Release returns ip to the pool.
func (a *Allocator) Release(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	delete(a.poolFor(ip).used, ip)
}

// InUse reports whether ip is allocated.
func (a *Allocator) InUse(ip netip.Addr) bool {
	return ip.IsValid() && a.poolFor(ip).used[ip]
}

// Next allocates one address of each enabled family. A disabled family
// yields the zero Addr.
func (a *Allocator) Next() (v4, v6 netip.Addr, err error) {
	if a.pools[0].prefix.IsValid() {
		if v4, err = a.pools[0].allocate(); err != nil {
			return netip.Addr{}, netip.Addr{}, err
		}
	}
	if a.pools[1].prefix.IsValid() {
		if v6, err = a.pools[1].allocate(); err != nil {
			a.Release(v4)
			return netip.Addr{}, netip.Addr{}, err
		}
	}
	return v4, v6, nil
}

// allocate finds the next free address after p.next, wrapping once. The
// search is linear only across used addresses, so sequential allocation is
// O(1) amortised.
func (p *pool) allocate() (netip.Addr, error) {
	start := p.next
	ip := start
	for {
		if !p.prefix.Contains(ip) {
			ip = p.prefix.Addr().Next()
		}
		if !p.used[ip] && usable(p.prefix, ip) && !isReserved(ip) {
			p.used[ip] = true
			p.next = ip.Next()
			return ip, nil
		}
		ip = ip.Next()
		if !p.prefix.Contains(ip) {
			ip = p.prefix.Addr().Next()
		}
		if ip == start {
			return netip.Addr{}, fmt.Errorf("%w: %s", ErrExhausted, p.prefix)
		}
	}
}

// usable excludes the network address and, for IPv4, the broadcast address.
func usable(p netip.Prefix, ip netip.Addr) bool {
	if ip == p.Addr() {
		return false
	}
	if ip.Is4() && ip == lastAddr(p) {
		return false
	}
	return true
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().As16()
	bits := p.Bits()
	if p.Addr().Is4() {
		bits += 96
	}
	for i := bits; i < 128; i++ {
		b[i/8] |= 1 << (7 - uint(i%8))
	}
	a := netip.AddrFrom16(b)
	if p.Addr().Is4() {
		return a.Unmap()
	}
	return a
}

func isReserved(ip netip.Addr) bool {
	for _, r := range reserved {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}
