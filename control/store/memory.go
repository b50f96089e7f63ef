package store

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"weft.dev/weft/wire/key"
)

// Memory is an in-memory Store for tests. It enforces the same uniqueness,
// reference and ID rules as the SQLite store, and copies values in and out
// so callers never share memory with it.
type Memory struct {
	mu sync.Mutex
	// Fields below are guarded by mu.
	closed bool
	lastID [numTables]int64 // per table; IDs are never reused
	users  map[int64]User
	nodes  map[int64]Node
	// Indexes of the nodes' unique fields (what SQLite's UNIQUE indexes
	// do), so a registration costs O(1) and not a scan of every node.
	byNodeKey   map[key.NodePublic]int64
	byGivenName map[string]int64 // non-empty names only
	byIPv4      map[netip.Addr]int64
	byIPv6      map[netip.Addr]int64
	preAuth     map[int64]PreAuthKey
	apiKeys     map[int64]APIKey
	dns         map[int64]DNSRecord
	policies    []Policy // in ID order
	settings    map[string]string
}

type table int

const (
	tableUsers table = iota
	tableNodes
	tablePreAuth
	tableAPIKeys
	tableDNS
	tablePolicies
	numTables
)

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		users:       make(map[int64]User),
		nodes:       make(map[int64]Node),
		byNodeKey:   make(map[key.NodePublic]int64),
		byGivenName: make(map[string]int64),
		byIPv4:      make(map[netip.Addr]int64),
		byIPv6:      make(map[netip.Addr]int64),
		preAuth:     make(map[int64]PreAuthKey),
		apiKeys:     make(map[int64]APIKey),
		dns:         make(map[int64]DNSRecord),
		settings:    make(map[string]string),
	}
}

// lock takes mu and fails if the store is closed or ctx is done, so Memory
// honours the same contract as a store doing I/O.
func (m *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return errClosed
	}
	return nil
}

func (m *Memory) nextIDLocked(t table) int64 {
	m.lastID[t]++
	return m.lastID[t]
}

// sortedValues returns the map's values ordered by ID, each passed through
// clone; nil when the map is empty, as the SQLite store returns.
func sortedValues[V any](m map[int64]V, clone func(V) V) []V {
	ids := slices.Sorted(maps.Keys(m))
	var out []V
	for _, id := range ids {
		out = append(out, clone(m[id]))
	}
	return out
}

// CreateUser implements Store.
func (m *Memory) CreateUser(ctx context.Context, u *User) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	defer m.mu.Unlock()
	for _, o := range m.users {
		if o.Name == u.Name {
			return fmt.Errorf("create user %q: %w", u.Name, conflictErr("users.name"))
		}
	}
	v := normUser(*u)
	v.ID = m.nextIDLocked(tableUsers)
	m.users[v.ID] = v
	u.ID = v.ID
	return nil
}

// ListUsers implements Store.
func (m *Memory) ListUsers(ctx context.Context) ([]User, error) {
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer m.mu.Unlock()
	return sortedValues(m.users, normUser), nil
}

// DeleteUser implements Store. The user's pre-auth keys are deleted with it.
func (m *Memory) DeleteUser(ctx context.Context, id int64) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	defer m.mu.Unlock()
	if _, ok := m.users[id]; !ok {
		return fmt.Errorf("delete user %d: %w", id, ErrNotFound)
	}
	owned := 0
	for _, n := range m.nodes {
		if n.UserID == id {
			owned++
		}
	}
	if owned > 0 {
		return fmt.Errorf("delete user %d: %w", id, userOwnsNodesErr(owned))
	}
	for kid, k := range m.preAuth {
		if k.UserID == id {
			delete(m.preAuth, kid)
		}
	}
	delete(m.users, id)
	return nil
}

// userOwnsNodesErr is DeleteUser's refusal, shared by both stores.
func userOwnsNodesErr(n int) error {
	return fmt.Errorf("user still owns %d node(s); delete them or move them to another user first: %w", n, ErrConflict)
}

// checkNodeLocked reports whether n may be stored under its ID: its user
// exists and none of its unique fields is taken by another node.
func (m *Memory) checkNodeLocked(n *Node) error {
	if _, ok := m.users[n.UserID]; !ok {
		return fmt.Errorf("user %d: %w", n.UserID, ErrNotFound)
	}
	taken := func(id int64, ok bool) bool { return ok && id != n.ID }
	switch {
	case taken(lookup(m.byNodeKey, n.NodeKey, true)):
		return conflictErr("nodes.node_key")
	case taken(lookup(m.byGivenName, n.GivenName, n.GivenName != "")):
		return conflictErr("nodes.given_name")
	case taken(lookup(m.byIPv4, n.IPv4, n.IPv4.IsValid())):
		return conflictErr("nodes.ipv4")
	case taken(lookup(m.byIPv6, n.IPv6, n.IPv6.IsValid())):
		return conflictErr("nodes.ipv6")
	}
	return nil
}

// lookup is m[k], or not found when present is false (a NULL column).
func lookup[K comparable](m map[K]int64, k K, present bool) (int64, bool) {
	if !present {
		return 0, false
	}
	id, ok := m[k]
	return id, ok
}

// putNodeLocked stores n, replacing any node with its ID, and keeps the
// indexes in step.
func (m *Memory) putNodeLocked(n Node) {
	m.deleteNodeLocked(n.ID)
	m.nodes[n.ID] = n
	m.byNodeKey[n.NodeKey] = n.ID
	if n.GivenName != "" {
		m.byGivenName[n.GivenName] = n.ID
	}
	if n.IPv4.IsValid() {
		m.byIPv4[n.IPv4] = n.ID
	}
	if n.IPv6.IsValid() {
		m.byIPv6[n.IPv6] = n.ID
	}
}

func (m *Memory) deleteNodeLocked(id int64) {
	old, ok := m.nodes[id]
	if !ok {
		return
	}
	delete(m.nodes, id)
	delete(m.byNodeKey, old.NodeKey)
	delete(m.byGivenName, old.GivenName)
	delete(m.byIPv4, old.IPv4)
	delete(m.byIPv6, old.IPv6)
}

// CreateNode implements Store. A non-zero useKeyID names a pre-auth key that
// is marked used; if the key is single-use and already used, CreateNode fails
// with ErrConflict and stores nothing.
func (m *Memory) CreateNode(ctx context.Context, n *Node, useKeyID int64) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("create node %s: %w", nodeName(n), err)
	}
	defer m.mu.Unlock()
	v := normNode(*n)
	v.ID = 0
	if err := m.checkNodeLocked(&v); err != nil {
		return fmt.Errorf("create node %s: %w", nodeName(n), err)
	}
	if err := m.useKeyLocked(useKeyID); err != nil {
		return fmt.Errorf("create node %s: %w", nodeName(n), err)
	}
	v.ID = m.nextIDLocked(tableNodes)
	m.putNodeLocked(v)
	n.ID = v.ID
	return nil
}

// useKeyLocked marks pre-auth key id used (nothing when id is 0). It must
// run after every other check of the write it belongs to, since it mutates.
func (m *Memory) useKeyLocked(id int64) error {
	if id == 0 {
		return nil
	}
	k, ok := m.preAuth[id]
	if !ok {
		return fmt.Errorf("pre-auth key %d: %w", id, ErrNotFound)
	}
	if k.Used && !k.Reusable {
		return keyUsedErr(k.Prefix)
	}
	k.Used = true
	m.preAuth[id] = k
	return nil
}

// keyUsedErr is the refusal of a spent single-use key.
func keyUsedErr(prefix string) error {
	return fmt.Errorf("single-use pre-auth key %q was already used: %w", prefix, ErrConflict)
}

// UpdateNode implements Store: it replaces the stored node with ID n.ID and,
// like CreateNode, marks pre-auth key useKeyID used.
func (m *Memory) UpdateNode(ctx context.Context, n *Node, useKeyID int64) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("update node %d: %w", n.ID, err)
	}
	defer m.mu.Unlock()
	if _, ok := m.nodes[n.ID]; !ok {
		return fmt.Errorf("update node %d: %w", n.ID, ErrNotFound)
	}
	v := normNode(*n)
	if err := m.checkNodeLocked(&v); err != nil {
		return fmt.Errorf("update node %d: %w", n.ID, err)
	}
	if err := m.useKeyLocked(useKeyID); err != nil {
		return fmt.Errorf("update node %d: %w", n.ID, err)
	}
	m.putNodeLocked(v)
	return nil
}

// DeleteNode implements Store.
func (m *Memory) DeleteNode(ctx context.Context, id int64) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("delete node %d: %w", id, err)
	}
	defer m.mu.Unlock()
	if _, ok := m.nodes[id]; !ok {
		return fmt.Errorf("delete node %d: %w", id, ErrNotFound)
	}
	m.deleteNodeLocked(id)
	return nil
}

// ListNodes implements Store.
func (m *Memory) ListNodes(ctx context.Context) ([]Node, error) {
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer m.mu.Unlock()
	return sortedValues(m.nodes, normNode), nil
}

// CreatePreAuthKey implements Store.
func (m *Memory) CreatePreAuthKey(ctx context.Context, k *PreAuthKey) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("create pre-auth key %q: %w", k.Prefix, err)
	}
	defer m.mu.Unlock()
	if _, ok := m.users[k.UserID]; !ok {
		return fmt.Errorf("create pre-auth key %q: user %d: %w", k.Prefix, k.UserID, ErrNotFound)
	}
	for _, o := range m.preAuth {
		if o.Prefix == k.Prefix {
			return fmt.Errorf("create pre-auth key %q: %w", k.Prefix, conflictErr("pre_auth_keys.prefix"))
		}
	}
	v := normPreAuthKey(*k)
	v.ID = m.nextIDLocked(tablePreAuth)
	m.preAuth[v.ID] = v
	k.ID = v.ID
	return nil
}

// GetPreAuthKey implements Store.
func (m *Memory) GetPreAuthKey(ctx context.Context, prefix string) (PreAuthKey, error) {
	if err := m.lock(ctx); err != nil {
		return PreAuthKey{}, fmt.Errorf("get pre-auth key %q: %w", prefix, err)
	}
	defer m.mu.Unlock()
	for _, k := range m.preAuth {
		if k.Prefix == prefix {
			return normPreAuthKey(k), nil
		}
	}
	return PreAuthKey{}, fmt.Errorf("get pre-auth key %q: %w", prefix, ErrNotFound)
}

// ListPreAuthKeys implements Store.
func (m *Memory) ListPreAuthKeys(ctx context.Context) ([]PreAuthKey, error) {
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("list pre-auth keys: %w", err)
	}
	defer m.mu.Unlock()
	return sortedValues(m.preAuth, normPreAuthKey), nil
}

// ExpirePreAuthKey implements Store: it sets the key's expiration to at.
func (m *Memory) ExpirePreAuthKey(ctx context.Context, id int64, at time.Time) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("expire pre-auth key %d: %w", id, err)
	}
	defer m.mu.Unlock()
	k, ok := m.preAuth[id]
	if !ok {
		return fmt.Errorf("expire pre-auth key %d: %w", id, ErrNotFound)
	}
	k.Expiration = normTime(at)
	m.preAuth[id] = k
	return nil
}

// CreateAPIKey implements Store.
func (m *Memory) CreateAPIKey(ctx context.Context, k *APIKey) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("create API key %q: %w", k.Prefix, err)
	}
	defer m.mu.Unlock()
	for _, o := range m.apiKeys {
		if o.Prefix == k.Prefix {
			return fmt.Errorf("create API key %q: %w", k.Prefix, conflictErr("api_keys.prefix"))
		}
	}
	v := normAPIKey(*k)
	v.ID = m.nextIDLocked(tableAPIKeys)
	m.apiKeys[v.ID] = v
	k.ID = v.ID
	return nil
}

// GetAPIKey implements Store.
func (m *Memory) GetAPIKey(ctx context.Context, prefix string) (APIKey, error) {
	if err := m.lock(ctx); err != nil {
		return APIKey{}, fmt.Errorf("get API key %q: %w", prefix, err)
	}
	defer m.mu.Unlock()
	for _, k := range m.apiKeys {
		if k.Prefix == prefix {
			return normAPIKey(k), nil
		}
	}
	return APIKey{}, fmt.Errorf("get API key %q: %w", prefix, ErrNotFound)
}

// ListAPIKeys implements Store.
func (m *Memory) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	defer m.mu.Unlock()
	return sortedValues(m.apiKeys, normAPIKey), nil
}

// ExpireAPIKey implements Store: it sets the key's expiration to at.
func (m *Memory) ExpireAPIKey(ctx context.Context, id int64, at time.Time) error {
	return m.updateAPIKey(ctx, "expire", id, func(k *APIKey) { k.Expiration = normTime(at) })
}

// TouchAPIKey implements Store: it records at as the key's last use.
func (m *Memory) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	return m.updateAPIKey(ctx, "touch", id, func(k *APIKey) { k.LastUsed = normTime(at) })
}

func (m *Memory) updateAPIKey(ctx context.Context, verb string, id int64, f func(*APIKey)) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("%s API key %d: %w", verb, id, err)
	}
	defer m.mu.Unlock()
	k, ok := m.apiKeys[id]
	if !ok {
		return fmt.Errorf("%s API key %d: %w", verb, id, ErrNotFound)
	}
	f(&k)
	m.apiKeys[id] = k
	return nil
}

// CreateDNSRecord implements Store. A record identical in name, type and
// value to an existing one is a conflict.
func (m *Memory) CreateDNSRecord(ctx context.Context, r *DNSRecord) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("create DNS record %s %s: %w", r.Name, r.Type, err)
	}
	defer m.mu.Unlock()
	for _, o := range m.dns {
		if o.Name == r.Name && o.Type == r.Type && o.Value == r.Value {
			return fmt.Errorf("create DNS record %s %s: %w", r.Name, r.Type, conflictErr("dns_records.name"))
		}
	}
	v := *r
	v.ID = m.nextIDLocked(tableDNS)
	m.dns[v.ID] = v
	r.ID = v.ID
	return nil
}

// ListDNSRecords implements Store.
func (m *Memory) ListDNSRecords(ctx context.Context) ([]DNSRecord, error) {
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("list DNS records: %w", err)
	}
	defer m.mu.Unlock()
	return sortedValues(m.dns, func(r DNSRecord) DNSRecord { return r }), nil
}

// DeleteDNSRecord implements Store.
func (m *Memory) DeleteDNSRecord(ctx context.Context, id int64) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("delete DNS record %d: %w", id, err)
	}
	defer m.mu.Unlock()
	if _, ok := m.dns[id]; !ok {
		return fmt.Errorf("delete DNS record %d: %w", id, ErrNotFound)
	}
	delete(m.dns, id)
	return nil
}

// PutPolicy implements Store.
func (m *Memory) PutPolicy(ctx context.Context, p *Policy) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("put policy: %w", err)
	}
	defer m.mu.Unlock()
	v := normPolicy(*p)
	v.ID = m.nextIDLocked(tablePolicies)
	m.policies = append(m.policies, v)
	p.ID = v.ID
	return nil
}

// CurrentPolicy implements Store.
func (m *Memory) CurrentPolicy(ctx context.Context) (Policy, error) {
	if err := m.lock(ctx); err != nil {
		return Policy{}, fmt.Errorf("current policy: %w", err)
	}
	defer m.mu.Unlock()
	if len(m.policies) == 0 {
		return Policy{}, fmt.Errorf("current policy: %w", ErrNotFound)
	}
	return normPolicy(m.policies[len(m.policies)-1]), nil
}

// ListPolicies implements Store, oldest first.
func (m *Memory) ListPolicies(ctx context.Context) ([]Policy, error) {
	if err := m.lock(ctx); err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	defer m.mu.Unlock()
	return slices.Clone(m.policies), nil
}

// Setting implements Store.
func (m *Memory) Setting(ctx context.Context, name string) (string, error) {
	if err := m.lock(ctx); err != nil {
		return "", fmt.Errorf("setting %q: %w", name, err)
	}
	defer m.mu.Unlock()
	v, ok := m.settings[name]
	if !ok {
		return "", fmt.Errorf("setting %q: %w", name, ErrNotFound)
	}
	return v, nil
}

// PutSetting implements Store.
func (m *Memory) PutSetting(ctx context.Context, name, value string) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("put setting %q: %w", name, err)
	}
	defer m.mu.Unlock()
	m.settings[name] = value
	return nil
}

// Close implements Store. Later calls fail.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
