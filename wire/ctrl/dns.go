package ctrl

import (
	"net/netip"

	"weft.dev/weft/wire/key"
)

// DNSConfig is the DNS configuration a node applies (tailcfg.DNSConfig;
// control.md §5.5). A nil MapResponse.DNSConfig leaves the client's
// configuration unchanged; a non-nil one replaces it.
type DNSConfig struct {
	// Resolvers are the global resolvers ("override local DNS").
	Resolvers []Resolver `json:",omitempty"`
	// Routes maps a domain suffix ("corp.example.") to its resolvers (split
	// DNS). An empty list means 100.100.100.100 answers (for ExtraRecords).
	Routes map[string][]Resolver `json:",omitempty"`
	// FallbackResolvers are used only when split DNS needs a default.
	FallbackResolvers []Resolver `json:",omitempty"`
	// Domains are search domains, without trailing dot.
	Domains []string `json:",omitempty"`
	// Proxied turns MagicDNS on.
	Proxied bool `json:",omitzero"`
	// Nameservers is deprecated: use Resolvers.
	Nameservers []netip.Addr `json:",omitempty"`
	// CertDomains are the names `tailscale cert` may request.
	CertDomains []string `json:",omitempty"`
	// ExtraRecords are records served by 100.100.100.100.
	ExtraRecords []DNSRecord `json:",omitempty"`
	// ExitNodeFilteredSet are suffixes the exit-node DNS proxy refuses.
	ExitNodeFilteredSet []string `json:",omitempty"`
	// TempCorpIssue13969 is a Tailscale-internal workaround knob.
	TempCorpIssue13969 string `json:",omitzero"`
}

// Resolver is one DNS resolver (dnstype.Resolver).
type Resolver struct {
	// Addr is an IP (port 53), "ip:port", or a DoH "https://…" URL.
	Addr string `json:",omitempty"`
	// BootstrapResolution are IPs for a DoH host name (unused by 1.102).
	BootstrapResolution []netip.Addr `json:",omitempty"`
	// UseWithExitNode keeps using this resolver while an exit node is on.
	UseWithExitNode bool `json:",omitempty"`
}

// DNSRecord is an extra record served by MagicDNS (tailcfg.DNSRecord).
type DNSRecord struct {
	// Name is the FQDN.
	Name string
	// Type is "", "A" or "AAAA" ("" infers it from Value).
	Type string `json:",omitzero"`
	// Value is the IP address.
	Value string
}

// SetDNSRequest is the body of POST /machine/set-dns (tailcfg.SetDNSRequest),
// used by `tailscale cert` for ACME DNS-01. Answer 200 with body "{}".
type SetDNSRequest struct {
	Version CapabilityVersion
	NodeKey key.NodePublic
	// Name is the record name, e.g. "_acme-challenge.host.weft.test".
	Name string
	// Type is the record type, "TXT" for ACME.
	Type string
	// Value is the record value.
	Value string
}
