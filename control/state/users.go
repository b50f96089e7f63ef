package state

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"weft.dev/weft/control/store"
)

// CreateUser adds a user with a unique login name.
func (s *State) CreateUser(ctx context.Context, name, display, email string) (store.User, error) {
	name = strings.TrimSpace(name)
	if name == "" || strings.ContainsAny(name, " \t\n/") {
		return store.User{}, fmt.Errorf("invalid user name %q: use a non-empty name without spaces or '/'", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.userByName[name]; ok {
		return store.User{}, fmt.Errorf("user %q already exists", name)
	}
	if display == "" {
		display = name
	}
	u := store.User{Name: name, DisplayName: display, Email: email, CreatedAt: s.cfg.Clock.Now()}
	if err := s.cfg.Store.CreateUser(ctx, &u); err != nil {
		return store.User{}, fmt.Errorf("create user %q: %w", name, err)
	}
	s.users[u.ID] = u
	s.userByName[name] = u.ID
	s.emitLocked(Change{Kind: UserChanged})
	return u, nil
}

// DeleteUser removes a user that owns no nodes.
func (s *State) DeleteUser(ctx context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.userByName[name]
	if !ok {
		return fmt.Errorf("user %q: %w", name, ErrNotFound)
	}
	for _, n := range s.nodes {
		if n.UserID == id {
			return fmt.Errorf("user %q still owns node %q (%d): delete its nodes first", name, n.GivenName, n.ID)
		}
	}
	if err := s.cfg.Store.DeleteUser(ctx, id); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("user %q still owns pre-auth keys or nodes: %w", name, err)
		}
		return fmt.Errorf("delete user %q: %w", name, err)
	}
	delete(s.users, id)
	delete(s.userByName, name)
	return nil
}

// AddDNSRecord adds a custom A/AAAA record for every node's DNS config.
func (s *State) AddDNSRecord(ctx context.Context, name, typ, value string) (store.DNSRecord, error) {
	name = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ".")
	typ = strings.ToUpper(typ)
	if name == "" || strings.Contains(name, "..") {
		return store.DNSRecord{}, fmt.Errorf("invalid record name %q", name)
	}
	ip, err := netip.ParseAddr(value)
	if err != nil {
		return store.DNSRecord{}, fmt.Errorf("invalid record value %q: want an IP address", value)
	}
	switch {
	case typ == "":
		typ = "A"
		if ip.Is6() {
			typ = "AAAA"
		}
	case typ == "A" && !ip.Is4(), typ == "AAAA" && !ip.Is6():
		return store.DNSRecord{}, fmt.Errorf("record type %s does not match address %s", typ, ip)
	case typ != "A" && typ != "AAAA":
		return store.DNSRecord{}, fmt.Errorf("unsupported record type %q: use A or AAAA", typ)
	}
	r := store.DNSRecord{Name: name, Type: typ, Value: ip.String()}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.records {
		if o.Name == r.Name && o.Type == r.Type && o.Value == r.Value {
			return store.DNSRecord{}, fmt.Errorf("record %s %s %s already exists", r.Name, r.Type, r.Value)
		}
	}
	if err := s.cfg.Store.CreateDNSRecord(ctx, &r); err != nil {
		return store.DNSRecord{}, fmt.Errorf("add dns record: %w", err)
	}
	s.records = append(s.records, r)
	s.emitLocked(Change{Kind: DNSChanged})
	return r, nil
}

// DeleteDNSRecord removes a record by ID.
func (s *State) DeleteDNSRecord(ctx context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := -1
	for j, r := range s.records {
		if r.ID == id {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("dns record %d: %w", id, ErrNotFound)
	}
	if err := s.cfg.Store.DeleteDNSRecord(ctx, id); err != nil {
		return fmt.Errorf("delete dns record %d: %w", id, err)
	}
	s.records = append(s.records[:i], s.records[i+1:]...)
	s.emitLocked(Change{Kind: DNSChanged})
	return nil
}
