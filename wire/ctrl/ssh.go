package ctrl

import (
	"net/netip"
	"time"
)

// SSHPolicy is the Tailscale SSH policy of a node (tailcfg.SSHPolicy;
// lower-case JSON names). The first matching rule wins.
type SSHPolicy struct {
	Rules []*SSHRule `json:"rules"`
}

// SSHRule is one SSH access rule (tailcfg.SSHRule).
type SSHRule struct {
	// RuleExpires, if set, is when the rule stops applying.
	RuleExpires *time.Time `json:"ruleExpires,omitempty"`
	// Principals match the connecting side; any match suffices.
	Principals []*SSHPrincipal `json:"principals"`
	// SSHUsers maps the requested SSH user (or "*") to the local user
	// ("=" means the same name).
	SSHUsers map[string]string `json:"sshUsers"`
	// Action is what to do when the rule matches.
	Action *SSHAction `json:"action"`
	// AcceptEnv lists environment variables the client may send (globs allowed).
	AcceptEnv []string `json:"acceptEnv,omitempty"`
}

// SSHPrincipal matches a connecting node or user; set exactly one field (tailcfg.SSHPrincipal).
type SSHPrincipal struct {
	Node      StableNodeID `json:"node,omitempty"`
	NodeIP    string       `json:"nodeIP,omitempty"`
	UserLogin string       `json:"userLogin,omitempty"` // "alice@example.com"
	Any       bool         `json:"any,omitempty"`
	// UnusedPubKeys is obsolete.
	UnusedPubKeys []string `json:"pubKeys,omitempty"`
}

// SSHAction is the outcome of a matching SSH rule (tailcfg.SSHAction).
type SSHAction struct {
	// Message is shown to the user before the action.
	Message string `json:"message,omitempty"`
	// Reject refuses the connection.
	Reject bool `json:"reject,omitempty"`
	// Accept lets the connection in.
	Accept bool `json:"accept,omitempty"`
	// SessionDuration limits the session (0 = unlimited); JSON nanoseconds.
	SessionDuration time.Duration `json:"sessionDuration,omitempty"`
	// AllowAgentForwarding permits SSH agent forwarding.
	AllowAgentForwarding bool `json:"allowAgentForwarding,omitempty"`
	// HoldAndDelegate is a server URL the node long-polls over Noise for the
	// real action (check mode); $SRC_NODE_IP etc. are substituted.
	HoldAndDelegate string `json:"holdAndDelegate,omitempty"`
	// AllowLocalPortForwarding permits -L forwarding.
	AllowLocalPortForwarding bool `json:"allowLocalPortForwarding,omitempty"`
	// AllowRemotePortForwarding permits -R forwarding.
	AllowRemotePortForwarding bool `json:"allowRemotePortForwarding,omitempty"`
	// Recorders are session recorders to stream to.
	Recorders []netip.AddrPort `json:"recorders,omitempty"`
	// OnRecordingFailure says what to do when recording fails.
	OnRecordingFailure *SSHRecorderFailureAction `json:"onRecordingFailure,omitempty"`
}

// SSHRecorderFailureAction says what to do when no recorder is reachable
// (tailcfg.SSHRecorderFailureAction; upper-case JSON names, unlike its parent).
type SSHRecorderFailureAction struct {
	RejectSessionWithMessage    string `json:",omitempty"`
	TerminateSessionWithMessage string `json:",omitempty"`
	NotifyURL                   string `json:",omitempty"`
}
