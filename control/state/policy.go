package state

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"weft.dev/weft/control/store"
	"weft.dev/weft/policy"
)

// activePolicy is the tailnet policy in force. Guarded by State.mu.
type activePolicy struct {
	pol  *policy.Policy // nil: none set (allow-all, tags only from pre-auth keys)
	info PolicyInfo
	// compiled is nil while the policy allows all traffic (no policy, or
	// one without "acls"): the mapper then uses its shared-frame fast path.
	compiled *policy.Compiled
}

// PolicyInfo describes the active policy.
type PolicyInfo struct {
	// Text is the policy file as given; empty when none is set.
	Text string
	// Version is the store's ID of this version (0 from a file or none).
	Version int64
	Updated time.Time
	// File is the --policy-file path the policy was read from, if any.
	File string
}

// PolicyOrigin says where a policy being applied comes from.
type PolicyOrigin struct {
	// File is the watched --policy-file path; such a policy is not
	// written to the store (the file is authoritative).
	File string
	// Startup is set while the server starts, before any map session
	// exists: nothing is diffed or emitted, the mapper's first snapshot
	// carries the policy.
	Startup bool
}

// PolicyResult is the outcome of applying a policy.
type PolicyResult struct {
	Info PolicyInfo
	// Affected are the nodes whose packet filter or peer set changed.
	Affected []int64
}

// ErrPolicyUnchanged is returned by SetPolicy for the text already active.
var ErrPolicyUnchanged = errors.New("policy unchanged")

// Policy returns the active policy's description.
func (s *State) Policy() PolicyInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pol.info
}

// PolicyHistory returns every stored policy version, oldest first.
func (s *State) PolicyHistory(ctx context.Context) ([]store.Policy, error) {
	return s.cfg.Store.ListPolicies(ctx)
}

// CheckPolicy parses data and runs its tests against the current nodes,
// returning policy.Errors (each with line:column) or nil.
func (s *State) CheckPolicy(data []byte) error {
	return policy.Check(data, s.policyNodes()...)
}

func (s *State) policyNodes() []policy.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policyNodesLocked()
}

func (s *State) policyNodesLocked() []policy.Node {
	out := make([]policy.Node, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, s.policyNodeLocked(n))
	}
	slices.SortFunc(out, func(a, b policy.Node) int { return cmpInt(a.ID, b.ID) })
	return out
}

// policyNodeLocked is what the policy engine knows of n: its owner's login
// name (users without "@" are written "alice@" in policies, as headscale
// does), tags, addresses and the routes it serves.
func (s *State) policyNodeLocked(n *Node) policy.Node {
	pn := policy.Node{ID: n.ID, Tags: n.Tags, Routes: n.ServedRoutes()}
	if !n.IsTagged() {
		pn.User = s.users[n.UserID].Name
	}
	for _, ip := range []netip.Addr{n.IPv4, n.IPv6} {
		if ip.IsValid() {
			pn.IPs = append(pn.IPs, ip)
		}
	}
	return pn
}

// LoadPolicy activates the newest stored policy, if any, at start-up
// before any map session exists (nothing is emitted). Its tests are not
// enforced here: nodes may have changed since it was set.
func (s *State) LoadPolicy(ctx context.Context) error {
	sp, err := s.cfg.Store.CurrentPolicy(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load policy: %w", err)
	}
	p, err := policy.Parse([]byte(sp.Data))
	if err != nil {
		return fmt.Errorf("stored policy version %d is invalid (set a valid one with: weft-control policy set FILE):\n%w", sp.ID, err)
	}
	if errs := p.RunTests(s.policyNodes()...); len(errs) > 0 {
		s.log.Warn("stored policy's tests fail against the current nodes", "version", sp.ID, "failures", errs.Error())
	}
	_, err = s.applyPolicy(ctx, p, PolicyInfo{Text: sp.Data, Version: sp.ID, Updated: sp.CreatedAt}, false, true)
	return err
}

// SetPolicy validates data (syntax, references, and its "tests" section
// run against the current nodes), stores it unless it comes from a file,
// and makes it active. Nodes whose filter or visibility change are
// reported to OnChange as one PolicyChanged. On any error (policy.Errors
// for a bad file) the active policy is unchanged.
func (s *State) SetPolicy(ctx context.Context, data []byte, from PolicyOrigin) (PolicyResult, error) {
	p, err := policy.Parse(data)
	if err != nil {
		return PolicyResult{}, err
	}
	if errs := p.RunTests(s.policyNodes()...); len(errs) > 0 {
		return PolicyResult{}, errs
	}
	cur := s.Policy()
	if cur.Text == string(data) && cur.File == from.File {
		return PolicyResult{Info: cur}, ErrPolicyUnchanged
	}
	info := PolicyInfo{Text: string(data), Updated: s.cfg.Clock.Now(), File: from.File}
	return s.applyPolicy(ctx, p, info, from.File == "", from.Startup)
}

// applyPolicy compiles p outside the state lock (it may take a while for a
// large tailnet), then, under the lock, stores it, brings the compiled form
// up to date with nodes that changed meanwhile and installs it. The diff
// against the previous policy is computed outside the lock again and
// emitted as one PolicyChanged, unless startup is set (no sessions yet).
func (s *State) applyPolicy(ctx context.Context, p *policy.Policy, info PolicyInfo, persist, startup bool) (PolicyResult, error) {
	s.policyMu.Lock()
	defer s.policyMu.Unlock()

	s.mu.Lock()
	nodes := s.policyNodesLocked()
	gen := s.nodeGen
	s.mu.Unlock()
	var nc *policy.Compiled
	if !p.AllowsAll() {
		var err error
		if nc, err = p.Compile(nodes); err != nil {
			return PolicyResult{}, err
		}
	}

	s.mu.Lock()
	if persist {
		sp := store.Policy{Data: info.Text, CreatedAt: info.Updated}
		if err := s.cfg.Store.PutPolicy(ctx, &sp); err != nil {
			s.mu.Unlock()
			return PolicyResult{}, fmt.Errorf("store policy: %w", err)
		}
		info.Version = sp.ID
	}
	if nc != nil && gen != s.nodeGen {
		s.resyncLocked(nc, nodes)
	}
	old := s.pol.compiled
	s.pol = activePolicy{pol: p, info: info, compiled: nc}
	s.snap = nil
	if !startup {
		// At start-up routes were approved under this policy already
		// (unless the file changed while the server was down: those wait
		// for their node's next advertisement), and nothing may be
		// emitted before the mapper starts.
		s.autoApproveAllLocked(ctx)
	}
	s.mu.Unlock()

	var affected []int64
	switch {
	case startup:
	case nc != nil:
		affected = nc.ChangedFrom(old)
	case old != nil:
		affected = old.ChangedFrom(nil)
	}
	s.mu.Lock()
	if len(affected) > 0 {
		s.emitLocked(Change{Kind: PolicyChanged, Affected: affected})
	}
	s.mu.Unlock()
	s.log.Info("policy applied", "version", info.Version, "file", info.File, "allow_all", p.AllowsAll(), "affected_nodes", len(affected))
	return PolicyResult{Info: info, Affected: affected}, nil
}

// resyncLocked applies to c the node changes made since nodes was taken.
func (s *State) resyncLocked(c *policy.Compiled, nodes []policy.Node) {
	for _, n := range s.nodes {
		c.Update(s.policyNodeLocked(n))
	}
	for _, n := range nodes {
		if _, ok := s.nodes[n.ID]; !ok {
			c.Remove(n.ID)
		}
	}
}

// syncPolicyLocked keeps the compiled policy in step with node changes and
// returns the PolicyChanged changes they cause.
func (s *State) syncPolicyLocked(cs []Change) []Change {
	var extra []Change
	for _, c := range cs {
		switch c.Kind {
		case NodeAdded, NodeChanged, NodeRemoved:
			s.nodeGen++
		default:
			continue
		}
		pc := s.pol.compiled
		if pc == nil {
			continue
		}
		var ids []int64
		if c.Kind == NodeRemoved {
			ids = pc.Remove(c.NodeID)
		} else {
			ids = pc.Update(s.policyNodeLocked(c.Node))
		}
		if len(ids) > 0 {
			extra = append(extra, Change{Kind: PolicyChanged, Affected: ids})
		}
	}
	return extra
}

// nodeTagsLocked decides the tags a registering node gets: its pre-auth
// key's tags plus those it requests (--advertise-tags), all of which the
// policy's tagOwners must grant to the key's or login's user. Without a
// policy, key tags are taken as the admin created them and requested tags
// are refused (nothing owns them).
func (s *State) nodeTagsLocked(p RegisterParams) ([]string, error) {
	if s.pol.pol == nil {
		if len(p.RequestTags) > 0 {
			return nil, fmt.Errorf("tags %s were requested (--advertise-tags) but no policy grants them: define them in tagOwners and set the policy with: weft-control policy set FILE", strings.Join(p.RequestTags, ", "))
		}
		return slices.Clone(p.Tags), nil
	}
	want := append(slices.Clone(p.Tags), p.RequestTags...)
	if len(want) == 0 {
		return nil, nil
	}
	valid, err := s.pol.pol.ValidTags(s.users[p.UserID].Name, want)
	if err != nil {
		return nil, err
	}
	return valid, nil
}

// autoApproveLocked adds to n's approved routes the advertised ones the
// policy's autoApprovers approve. It reports whether any were added.
func (s *State) autoApproveLocked(n *Node) bool {
	if s.pol.pol == nil || len(n.AdvertisedRoutes) == 0 {
		return false
	}
	pn := s.policyNodeLocked(n)
	added := false
	for _, r := range s.pol.pol.AutoApprove(pn, n.AdvertisedRoutes) {
		if !slices.Contains(n.ApprovedRoutes, r) {
			n.ApprovedRoutes = append(n.ApprovedRoutes, r)
			added = true
		}
	}
	if added {
		slices.SortFunc(n.ApprovedRoutes, func(a, b netip.Prefix) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return a.Bits() - b.Bits()
		})
	}
	return added
}

// autoApproveAllLocked applies a new policy's autoApprovers to the routes
// nodes already advertise.
func (s *State) autoApproveAllLocked(ctx context.Context) {
	if s.pol.pol == nil {
		return
	}
	var ids []int64
	for _, n := range s.nodes {
		if len(n.AdvertisedRoutes) > 0 && s.autoApproveLocked(n.clone()) {
			ids = append(ids, n.ID)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		if _, err := s.updateLocked(ctx, id, NodeChanged, true, func(n *Node) error {
			s.autoApproveLocked(n)
			return nil
		}); err != nil {
			s.log.Warn("auto-approve routes", "node", id, "err", err)
		}
	}
}
