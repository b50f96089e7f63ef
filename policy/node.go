package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Node is what the policy needs to know about a node, independent of how
// the control server stores it.
type Node struct {
	ID     int64
	User   string // login name; "" for tagged nodes
	Tags   []string
	IPs    []netip.Addr
	Routes []netip.Prefix // approved subnet routes, incl. 0.0.0.0/0 and ::/0 for exit nodes
}

// nodeInfo is a Node with the derived facts every match needs.
type nodeInfo struct {
	Node
	user    string // normalised; "" when tagged (tags replace the user identity)
	tagged  bool
	exit    bool
	subnets []netip.Prefix // approved routes without the exit routes
}

func newNodeInfo(n Node) nodeInfo {
	ni := nodeInfo{Node: n, tagged: len(n.Tags) > 0}
	if !ni.tagged {
		ni.user = normUser(n.User)
	}
	for _, r := range n.Routes {
		if r.Bits() == 0 {
			ni.exit = true
			continue
		}
		ni.subnets = append(ni.subnets, r)
	}
	return ni
}

func isExitRoute(p netip.Prefix) bool { return p.Bits() == 0 }

// inGroup reports whether the normalised user is a member of group.
func (p *Policy) inGroup(group, user string) bool {
	return user != "" && slices.Contains(p.groups[group], user)
}

// identityMatch reports whether an alias naming identities (users, groups,
// tags, member/tagged) covers a node or test identity.
func (p *Policy) identityMatch(a alias, user string, tags []string) bool {
	tagged := len(tags) > 0
	switch a.kind {
	case kindWildcard:
		return true
	case kindUser:
		return !tagged && user != "" && user == a.name
	case kindGroup:
		return !tagged && p.inGroup(a.name, user)
	case kindTag:
		return slices.Contains(tags, a.name)
	case kindMember:
		return !tagged && user != ""
	case kindTagged:
		return tagged
	}
	return false
}

// ValidTags returns the requested tags the user may apply, per tagOwners.
// A tag owned by another requested, permitted tag is permitted too
// (Tailscale's tags-own-tags rule). The error names every refused tag.
func (p *Policy) ValidTags(user string, requested []string) ([]string, error) {
	u := normUser(user)
	ok := make(map[string]bool)
	owned := func(tag string) bool {
		owners, defined := p.tagOwners[tag]
		if !defined {
			return false
		}
		for _, o := range owners {
			switch o.kind {
			case kindTag:
				if ok[o.name] {
					return true
				}
			case kindUser, kindGroup, kindMember:
				if p.identityMatch(o, u, nil) {
					return true
				}
			}
		}
		return false
	}
	// Iterate to a fixed point: each round may permit tags owned by tags
	// permitted in the previous round.
	for changed := true; changed; {
		changed = false
		for _, t := range requested {
			if !ok[t] && owned(t) {
				ok[t] = true
				changed = true
			}
		}
	}
	var valid, refused []string
	for _, t := range requested {
		switch {
		case ok[t]:
			if !slices.Contains(valid, t) {
				valid = append(valid, t)
			}
		case !slices.Contains(refused, t):
			refused = append(refused, t)
		}
	}
	slices.Sort(valid)
	if len(refused) > 0 {
		var why []string
		for _, t := range refused {
			if _, defined := p.tagOwners[t]; !defined {
				why = append(why, fmt.Sprintf("%q is not defined in tagOwners", t))
			} else {
				why = append(why, fmt.Sprintf("%q is not owned by %q", t, user))
			}
		}
		return valid, fmt.Errorf("tags refused: %s; add the owner to tagOwners in the policy", strings.Join(why, ", "))
	}
	return valid, nil
}

// AutoApprove returns the advertised routes that autoApprovers approve for
// the node. A subnet route is approved by an approver of any routes entry
// containing it; exit routes (0.0.0.0/0, ::/0) by exitNode approvers, or by
// a routes entry for the default route itself, as headscale does.
func (p *Policy) AutoApprove(node Node, advertised []netip.Prefix) []netip.Prefix {
	ni := newNodeInfo(node)
	matches := func(approvers []alias) bool {
		for _, a := range approvers {
			if p.identityMatch(a, ni.user, ni.Tags) {
				return true
			}
		}
		return false
	}
	var out []netip.Prefix
	for _, adv := range advertised {
		adv = adv.Masked()
		approved := isExitRoute(adv) && matches(p.exitApprovers)
		for _, ra := range p.routeApprovers {
			if approved {
				break
			}
			if ra.prefix.Addr().Is4() != adv.Addr().Is4() || ra.prefix.Bits() > adv.Bits() || !ra.prefix.Contains(adv.Addr()) {
				continue
			}
			approved = matches(ra.approvers)
		}
		if approved && !slices.Contains(out, adv) {
			out = append(out, adv)
		}
	}
	return out
}
