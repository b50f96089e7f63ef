package policy

import (
	"net/netip"
	"slices"
)

// ipRange is an inclusive address range within one family.
type ipRange struct {
	from, to netip.Addr
}

func prefixRange(p netip.Prefix) ipRange {
	p = p.Masked()
	return ipRange{from: p.Addr(), to: lastAddr(p)}
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	if a.Is4() {
		b := a.As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}

// mergeRanges sorts ranges and joins overlapping or adjacent ones.
func mergeRanges(rs []ipRange) []ipRange {
	slices.SortFunc(rs, func(a, b ipRange) int {
		if c := a.from.Compare(b.from); c != 0 {
			return c
		}
		return a.to.Compare(b.to)
	})
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			next := last.to.Next()
			if last.from.Is4() == r.from.Is4() && (r.from.Compare(last.to) <= 0 || (next.IsValid() && r.from == next)) {
				if r.to.Compare(last.to) > 0 {
					last.to = r.to
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// prefixes splits a range into the fewest CIDRs covering exactly it.
func (r ipRange) prefixes() []netip.Prefix {
	var out []netip.Prefix
	from := r.from
	for {
		bits := from.BitLen()
		// Grow the prefix while it stays aligned on from and inside the range.
		for bits > 0 {
			p := netip.PrefixFrom(from, bits-1)
			if p.Masked().Addr() != from || lastAddr(p).Compare(r.to) > 0 {
				break
			}
			bits--
		}
		p := netip.PrefixFrom(from, bits)
		out = append(out, p)
		end := lastAddr(p)
		if end.Compare(r.to) >= 0 {
			return out
		}
		from = end.Next()
	}
}

// String renders a range in FilterRule SrcIPs form: a bare IP, a CIDR when
// the range is exactly one, or "first-last" (which Tailscale clients accept,
// and which is how Tailscale's own control server writes long runs).
func (r ipRange) String() string {
	if r.from == r.to {
		return r.from.String()
	}
	if ps := r.prefixes(); len(ps) == 1 {
		return ps[0].String()
	}
	return r.from.String() + "-" + r.to.String()
}

// formatPrefix writes a single-address prefix as a bare IP, as Tailscale does.
func formatPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// subtractRanges removes every range in cut from rs (both merged).
func subtractRanges(rs, cut []ipRange) []ipRange {
	var out []ipRange
	for _, r := range rs {
		cur := []ipRange{r}
		for _, c := range cut {
			var next []ipRange
			for _, x := range cur {
				if x.from.Is4() != c.from.Is4() || c.to.Less(x.from) || x.to.Less(c.from) {
					next = append(next, x)
					continue
				}
				if x.from.Less(c.from) {
					next = append(next, ipRange{x.from, c.from.Prev()})
				}
				if c.to.Less(x.to) {
					next = append(next, ipRange{c.to.Next(), x.to})
				}
			}
			cur = next
		}
		out = append(out, cur...)
	}
	return out
}

// internetPrefixes is what autogroup:internet means, as in headscale's
// util.TheInternet: all IPv4 and 2000::/3, minus private, CGNAT (tailnet),
// Tailscale ULA and link-local space.
func internetPrefixes() []netip.Prefix {
	in := []ipRange{
		prefixRange(netip.MustParsePrefix("0.0.0.0/0")),
		prefixRange(netip.MustParsePrefix("2000::/3")),
	}
	var cut []ipRange
	for _, s := range []string{
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
		"fc00::/7", "fe80::/10", "fd7a:115c:a1e0::/48",
	} {
		cut = append(cut, prefixRange(netip.MustParsePrefix(s)))
	}
	var out []netip.Prefix
	for _, r := range mergeRanges(subtractRanges(in, mergeRanges(cut))) {
		out = append(out, r.prefixes()...)
	}
	return out
}

// prefixWithin reports whether p lies entirely inside one of set.
func prefixWithin(p netip.Prefix, set []netip.Prefix) bool {
	for _, s := range set {
		if s.Addr().Is4() == p.Addr().Is4() && s.Bits() <= p.Bits() && s.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func addrWithin(a netip.Addr, set []netip.Prefix) bool {
	for _, s := range set {
		if s.Contains(a) {
			return true
		}
	}
	return false
}
