package admin

import (
	"fmt"
	"net/netip"
	"time"
)

// User is a user as the admin API shows it.
type User struct {
	ID          int64     `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"display_name,omitempty"`
	Email       string    `json:"email,omitempty"`
	Created     time.Time `json:"created"`
}

// CreateUserRequest is the body of POST /api/v1/users.
type CreateUserRequest struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name,omitempty"`
	Email       string `json:"email,omitempty"`
}

// PreAuthKey describes a pre-auth key without its secret.
type PreAuthKey struct {
	ID         int64     `json:"id"`
	Prefix     string    `json:"prefix"`
	User       string    `json:"user"`
	Reusable   bool      `json:"reusable"`
	Ephemeral  bool      `json:"ephemeral"`
	Used       bool      `json:"used"`
	Tags       []string  `json:"tags"`
	Expiration time.Time `json:"expiration,omitzero"`
	Expired    bool      `json:"expired"`
	Created    time.Time `json:"created"`
}

// CreatePreAuthKeyRequest is the body of POST /api/v1/keys.
type CreatePreAuthKeyRequest struct {
	User      string   `json:"user"`
	Reusable  bool     `json:"reusable,omitempty"`
	Ephemeral bool     `json:"ephemeral,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	// Expiry is a Go duration ("1h", "30m") or a number of days ("90d");
	// empty means the server default (one hour).
	Expiry string `json:"expiry,omitempty"`
}

// CreatedPreAuthKey is the answer to POST /api/v1/keys: the only time the
// key text is shown.
type CreatedPreAuthKey struct {
	Key string `json:"key"`
	PreAuthKey
}

// Node is a node as the admin API lists it.
type Node struct {
	ID               int64          `json:"id"`
	Name             string         `json:"name"`
	Hostname         string         `json:"hostname"`
	User             string         `json:"user"`
	IPv4             netip.Addr     `json:"ipv4,omitzero"`
	IPv6             netip.Addr     `json:"ipv6,omitzero"`
	Online           bool           `json:"online"`
	LastSeen         time.Time      `json:"last_seen,omitzero"`
	Expiry           time.Time      `json:"expiry,omitzero"` // zero: never
	Expired          bool           `json:"expired"`
	Tags             []string       `json:"tags"`
	Ephemeral        bool           `json:"ephemeral"`
	Created          time.Time      `json:"created"`
	AdvertisedRoutes []netip.Prefix `json:"advertised_routes"`
	ApprovedRoutes   []netip.Prefix `json:"approved_routes"`
	NodeKey          string         `json:"node_key"`
	MachineKey       string         `json:"machine_key"`
}

// PendingLogin is an interactive login waiting for approval with
// POST /api/v1/nodes/register.
type PendingLogin struct {
	ID       string    `json:"id"`
	Hostname string    `json:"hostname"`
	NodeKey  string    `json:"node_key"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
}

// RegisterNodeRequest is the body of POST /api/v1/nodes/register.
type RegisterNodeRequest struct {
	// ID is the login ID from the URL the client printed (the whole URL
	// is accepted too).
	ID   string `json:"id"`
	User string `json:"user"`
}

// RenameNodeRequest is the body of POST /api/v1/nodes/{node}/rename.
type RenameNodeRequest struct {
	Name string `json:"name"`
}

// SetIPRequest is the body of POST /api/v1/nodes/{node}/ip.
type SetIPRequest struct {
	IP string `json:"ip"`
}

// SetTagsRequest is the body of POST /api/v1/nodes/{node}/tags.
type SetTagsRequest struct {
	Tags []string `json:"tags"`
}

// NodeRoutes is one node's subnet and exit routes.
type NodeRoutes struct {
	NodeID     int64          `json:"node_id"`
	Node       string         `json:"node"`
	Advertised []netip.Prefix `json:"advertised"`
	Approved   []netip.Prefix `json:"approved"`
	// Primary are the approved, advertised subnet routes this node serves
	// (exit routes excluded).
	Primary []netip.Prefix `json:"primary"`
}

// RoutesRequest is the body of POST /api/v1/nodes/{node}/routes/approve and
// /unapprove.
type RoutesRequest struct {
	Routes []string `json:"routes"`
}

// RoutesResult answers a route approval change.
type RoutesResult struct {
	NodeRoutes
	// NotAdvertised lists approved routes the node does not advertise:
	// they are kept but not served until the node advertises them.
	NotAdvertised []netip.Prefix `json:"not_advertised,omitempty"`
	Warning       string         `json:"warning,omitempty"`
}

// DNSRecord is a custom DNS record served to every node.
type DNSRecord struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// DNSRecordRequest is the body of POST /api/v1/dns/records. An empty Type is
// inferred from Value.
type DNSRecordRequest struct {
	Name  string `json:"name"`
	Type  string `json:"type,omitempty"`
	Value string `json:"value"`
}

// APIKey describes an admin API key without its secret.
type APIKey struct {
	ID         int64     `json:"id"`
	Prefix     string    `json:"prefix"`
	Expiration time.Time `json:"expiration,omitzero"`
	Expired    bool      `json:"expired"`
	Created    time.Time `json:"created"`
	LastUsed   time.Time `json:"last_used,omitzero"`
}

// CreateAPIKeyRequest is the body of POST /api/v1/apikeys.
type CreateAPIKeyRequest struct {
	// Expiry as in CreatePreAuthKeyRequest; empty means 90 days.
	Expiry string `json:"expiry,omitempty"`
}

// CreatedAPIKey is the answer to POST /api/v1/apikeys: the only time the key
// text is shown.
type CreatedAPIKey struct {
	Key string `json:"key"`
	APIKey
}

// ErrorResponse is the body of every error answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Policy locates every problem of a refused policy.
	Policy []PolicyError `json:"policy_errors,omitempty"`
}

// Policy is the active tailnet policy (GET /api/v1/policy).
type Policy struct {
	// Set is false while no policy is set: every node reaches every other.
	Set bool `json:"set"`
	// Policy is the HuJSON text as it was given.
	Policy  string    `json:"policy"`
	Version int64     `json:"version,omitempty"` // store version; 0 from a file
	Updated time.Time `json:"updated,omitzero"`
	// File is the --policy-file the policy comes from, if any.
	File string `json:"file,omitempty"`
}

// SetPolicyRequest is the body of PUT /api/v1/policy and
// POST /api/v1/policy/check.
type SetPolicyRequest struct {
	Policy string `json:"policy"`
}

// SetPolicyResult answers PUT /api/v1/policy.
type SetPolicyResult struct {
	Policy Policy `json:"policy"`
	// Unchanged is set when the text was already the active policy.
	Unchanged bool `json:"unchanged,omitempty"`
	// AffectedNodes are the IDs of nodes whose filter or peers changed.
	AffectedNodes []int64 `json:"affected_nodes"`
}

// PolicyError is one problem in a policy file, or one failed test.
type PolicyError struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Message string `json:"message"`
}

// String formats the problem as "line:column: message".
func (e PolicyError) String() string {
	if e.Line == 0 {
		return e.Message
	}
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Message)
}

// CheckPolicyResult answers POST /api/v1/policy/check.
type CheckPolicyResult struct {
	OK     bool          `json:"ok"`
	Errors []PolicyError `json:"errors"`
}

// PolicyVersion is one stored policy version (GET /api/v1/policy/history).
type PolicyVersion struct {
	Version int64     `json:"version"`
	Created time.Time `json:"created"`
	Bytes   int       `json:"bytes"`
}
