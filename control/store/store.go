package store

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"

	"weft.dev/weft/wire/key"
)

// Errors every implementation returns (wrapped) so callers can test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrConflict is a uniqueness violation (duplicate name, address, key).
	ErrConflict = errors.New("conflict")
)

// User owns nodes and pre-auth keys.
type User struct {
	ID          int64
	Name        string // unique login name, e.g. "alice"
	DisplayName string
	Email       string
	CreatedAt   time.Time
}

// Node is a registered machine login. Endpoints and disco keys are not
// stored: they change on every daemon start and live in control/state only.
type Node struct {
	ID         int64 // never reused after deletion
	MachineKey key.MachinePublic
	NodeKey    key.NodePublic
	UserID     int64
	Hostname   string // as reported by the client
	GivenName  string // unique DNS label used for the MagicDNS name
	IPv4       netip.Addr
	IPv6       netip.Addr
	// Hostinfo is the client's last reported Hostinfo, as raw JSON.
	Hostinfo         json.RawMessage
	Tags             []string
	AuthKeyID        int64 // pre-auth key used to register, 0 if interactive
	Ephemeral        bool
	Expiry           time.Time // zero means never
	AdvertisedRoutes []netip.Prefix
	ApprovedRoutes   []netip.Prefix
	CreatedAt        time.Time
	LastSeen         time.Time
}

// PreAuthKey is a key that registers nodes without interactive login. Only a
// hash of its secret is stored; Prefix identifies it in lookups and listings.
type PreAuthKey struct {
	ID         int64
	Prefix     string // public, unique
	Hash       []byte // SHA-256 of the full key text
	UserID     int64
	Reusable   bool
	Ephemeral  bool
	Used       bool
	Tags       []string
	Expiration time.Time // zero means never
	CreatedAt  time.Time
}

// APIKey authenticates the remote admin HTTP API. Only its hash is stored.
type APIKey struct {
	ID         int64
	Prefix     string
	Hash       []byte
	Expiration time.Time
	CreatedAt  time.Time
	LastUsed   time.Time
}

// DNSRecord is a custom DNS record delivered in every node's DNS config.
type DNSRecord struct {
	ID    int64
	Name  string // FQDN without trailing dot
	Type  string // "A" or "AAAA"
	Value string // IP address
}

// Policy is one version of the tailnet policy file.
type Policy struct {
	ID        int64
	Data      string
	CreatedAt time.Time
}

// Store is weft-control's durable storage. Methods are safe for concurrent
// use. Create methods set the ID field of their argument.
type Store interface {
	CreateUser(ctx context.Context, u *User) error
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser fails with ErrConflict while the user still owns nodes.
	DeleteUser(ctx context.Context, id int64) error

	// CreateNode inserts n; when useKeyID is non-zero the (single-use)
	// pre-auth key with that ID is marked used in the same transaction.
	CreateNode(ctx context.Context, n *Node, useKeyID int64) error
	// UpdateNode replaces the stored node n.ID; when useKeyID is non-zero
	// the single-use pre-auth key with that ID is marked used in the same
	// transaction (a re-login of an existing node), failing with ErrConflict
	// if it already was.
	UpdateNode(ctx context.Context, n *Node, useKeyID int64) error
	DeleteNode(ctx context.Context, id int64) error
	ListNodes(ctx context.Context) ([]Node, error)

	CreatePreAuthKey(ctx context.Context, k *PreAuthKey) error
	GetPreAuthKey(ctx context.Context, prefix string) (PreAuthKey, error)
	ListPreAuthKeys(ctx context.Context) ([]PreAuthKey, error)
	ExpirePreAuthKey(ctx context.Context, id int64, at time.Time) error

	CreateAPIKey(ctx context.Context, k *APIKey) error
	GetAPIKey(ctx context.Context, prefix string) (APIKey, error)
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	ExpireAPIKey(ctx context.Context, id int64, at time.Time) error
	TouchAPIKey(ctx context.Context, id int64, at time.Time) error

	CreateDNSRecord(ctx context.Context, r *DNSRecord) error
	ListDNSRecords(ctx context.Context) ([]DNSRecord, error)
	DeleteDNSRecord(ctx context.Context, id int64) error

	// PutPolicy appends a policy version; history is kept.
	PutPolicy(ctx context.Context, p *Policy) error
	// CurrentPolicy returns the newest policy, or ErrNotFound.
	CurrentPolicy(ctx context.Context) (Policy, error)
	ListPolicies(ctx context.Context) ([]Policy, error)

	// Setting and PutSetting hold small server values (e.g. the Noise key).
	Setting(ctx context.Context, name string) (string, error)
	PutSetting(ctx context.Context, name, value string) error

	Close() error
}
