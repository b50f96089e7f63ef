package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"weft.dev/weft/control/ipam"
	"weft.dev/weft/control/store"
	"weft.dev/weft/internal/clock"
	"weft.dev/weft/policy"
	"weft.dev/weft/wire/key"
)

// Config configures a State.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	Clock  clock.Clock
	// Prefix4 and Prefix6 are the address pools; a zero Prefix disables
	// that family (both zero: the Tailscale defaults).
	Prefix4, Prefix6 netip.Prefix
	// OnChange receives every change in commit order, called with the
	// state lock held: it must only enqueue.
	OnChange func([]Change)
}

// ErrNotFound is returned for unknown nodes, users and keys.
var ErrNotFound = errors.New("not found")

// State owns the live node table. See the package doc.
type State struct {
	cfg Config
	log *slog.Logger

	// policyMu serialises policy replacements, which compile outside mu.
	policyMu sync.Mutex

	mu sync.Mutex
	// guarded by mu:
	nodes      map[int64]*Node
	byNodeKey  map[key.NodePublic]*Node
	names      map[string]int64 // given name → node ID
	users      map[int64]store.User
	userByName map[string]int64
	ipam       *ipam.Allocator
	records    []store.DNSRecord
	snap       *Snapshot // nil when stale
	logins     map[string]*pendingLogin
	pol        activePolicy
	nodeGen    uint64 // counts node adds, changes and removals
}

// Snapshot is an immutable, ID-sorted view of every node.
type Snapshot struct {
	Nodes []*Node
	// Policy is the compiled policy in force when the snapshot was taken,
	// nil while every node may reach every other. It is kept up to date
	// in place, so it may reflect changes newer than Nodes; those changes
	// are always followed by their PolicyChanged.
	Policy *policy.Compiled
}

// Lookup finds a node by ID in the snapshot.
func (s *Snapshot) Lookup(id int64) *Node {
	i := sort.Search(len(s.Nodes), func(i int) bool { return s.Nodes[i].ID >= id })
	if i < len(s.Nodes) && s.Nodes[i].ID == id {
		return s.Nodes[i]
	}
	return nil
}

// New loads the durable state from cfg.Store.
func New(ctx context.Context, cfg Config) (*State, error) {
	if cfg.Store == nil {
		return nil, errors.New("state: no store")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func([]Change) {}
	}
	if !cfg.Prefix4.IsValid() && !cfg.Prefix6.IsValid() {
		cfg.Prefix4, cfg.Prefix6 = ipam.DefaultPrefix4, ipam.DefaultPrefix6
	}
	alloc, err := ipam.New(cfg.Prefix4, cfg.Prefix6)
	if err != nil {
		return nil, err
	}
	s := &State{
		cfg:        cfg,
		log:        cfg.Logger,
		nodes:      make(map[int64]*Node),
		byNodeKey:  make(map[key.NodePublic]*Node),
		names:      make(map[string]int64),
		users:      make(map[int64]store.User),
		userByName: make(map[string]int64),
		ipam:       alloc,
		logins:     make(map[string]*pendingLogin),
	}
	users, err := cfg.Store.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("load users: %w", err)
	}
	for _, u := range users {
		s.users[u.ID] = u
		s.userByName[u.Name] = u.ID
	}
	nodes, err := cfg.Store.ListNodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("load nodes: %w", err)
	}
	for i := range nodes {
		n := &Node{Node: nodes[i]}
		// Addresses from before a prefix change stay valid for their node.
		for _, ip := range []netip.Addr{n.IPv4, n.IPv6} {
			if err := s.ipam.Reserve(ip, true); err != nil {
				return nil, fmt.Errorf("load node %d: %w", n.ID, err)
			}
		}
		s.putLocked(n)
	}
	recs, err := cfg.Store.ListDNSRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("load dns records: %w", err)
	}
	s.records = recs
	s.log.Info("state loaded", "users", len(users), "nodes", len(nodes), "prefix4", cfg.Prefix4, "prefix6", cfg.Prefix6)
	return s, nil
}

// Now returns the state's clock time.
func (s *State) Now() time.Time { return s.cfg.Clock.Now() }

// putLocked indexes n, replacing any previous version with the same ID.
func (s *State) putLocked(n *Node) {
	if old := s.nodes[n.ID]; old != nil {
		delete(s.byNodeKey, old.NodeKey)
		if s.names[old.GivenName] == old.ID {
			delete(s.names, old.GivenName)
		}
	}
	s.nodes[n.ID] = n
	s.byNodeKey[n.NodeKey] = n
	s.names[n.GivenName] = n.ID
	s.snap = nil
}

func (s *State) removeLocked(n *Node) {
	delete(s.nodes, n.ID)
	delete(s.byNodeKey, n.NodeKey)
	if s.names[n.GivenName] == n.ID {
		delete(s.names, n.GivenName)
	}
	s.ipam.Release(n.IPv4)
	s.ipam.Release(n.IPv6)
	s.snap = nil
}

// Snapshot returns an immutable sorted view of all nodes. It is rebuilt
// lazily after changes, so a burst of changes costs one rebuild.
func (s *State) Snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snapshotLocked()
}

func (s *State) snapshotLocked() *Snapshot {
	if s.snap == nil {
		nodes := make([]*Node, 0, len(s.nodes))
		for _, n := range s.nodes {
			nodes = append(nodes, n)
		}
		slices.SortFunc(nodes, func(a, b *Node) int { return cmpInt(a.ID, b.ID) })
		s.snap = &Snapshot{Nodes: nodes, Policy: s.pol.compiled}
	}
	return s.snap
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Node returns the node with the given ID.
func (s *State) Node(id int64) (*Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[id]
	return n, ok
}

// NodeByKey returns the node registered with node key k.
func (s *State) NodeByKey(k key.NodePublic) (*Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.byNodeKey[k]
	return n, ok
}

// NodeByName returns the node with the given name.
func (s *State) NodeByName(name string) (*Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.names[name]
	if !ok {
		return nil, false
	}
	return s.nodes[id], true
}

// User returns the user with the given ID.
func (s *State) User(id int64) (store.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	return u, ok
}

// Users returns every user sorted by ID.
func (s *State) Users() []store.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b store.User) int { return cmpInt(a.ID, b.ID) })
	return out
}

// UserByName returns the user with the given login name.
func (s *State) UserByName(name string) (store.User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.userByName[name]
	if !ok {
		return store.User{}, false
	}
	return s.users[id], true
}

// DNSRecords returns the custom DNS records.
func (s *State) DNSRecords() []store.DNSRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

// Prefixes returns the configured address prefixes.
func (s *State) Prefixes() (v4, v6 netip.Prefix) {
	return s.ipam.Prefix4(), s.ipam.Prefix6()
}

// emitLocked hands changes to the subscriber in commit order, followed by
// the PolicyChanged they cause.
func (s *State) emitLocked(cs ...Change) {
	if extra := s.syncPolicyLocked(cs); len(extra) > 0 {
		cs = append(cs, extra...)
	}
	s.cfg.OnChange(cs)
}

// SnapshotWith calls f with the current snapshot while holding the state
// lock, so that f can atomically pair the snapshot with the changes the
// OnChange callback has queued so far. f must be quick and must not call
// back into State.
func (s *State) SnapshotWith(f func(*Snapshot)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.snapshotLocked())
}
