package interop

import (
	"fmt"
	"testing"

	"weft.dev/weft/internal/nettest"
)

// LabConfig describes the lab [NewLab] builds.
type LabConfig struct {
	// Nodes is the number of official tailscaled nodes, named ts1..tsN.
	Nodes int
	// Userspace runs them with --tun=userspace-networking instead of TUN.
	Userspace bool
	// NoDaemons creates the nodes' namespaces without starting tailscaled
	// (for scenarios that run weftd there instead).
	NoDaemons bool
	// NoDerper leaves out the derper node.
	NoDerper bool
	// Tailscaled is the base configuration for every node. NewLab fills in
	// Tun (from Userspace) and CAFile (the lab's TLS CA) when empty, and
	// turns DERPOverHTTP on when the lab has its `derper -dev`.
	Tailscaled TailscaledConfig
}

// Lab is a ready network for interop scenarios, all on one segment
// 198.18.1.0/24:
//
//	control  198.18.1.1  empty: the scenario starts a control server here
//	derp     198.18.1.2  official `derper -dev` (HTTP 3340, STUN 3478)
//	ts1..N   198.18.1.3+ official tailscaled, waiting for `tailscale up`
//
// (without the derper, ts1 takes 198.18.1.2).
// TLS holds a certificate for the control node's address whose CA every
// tailscaled trusts (SSL_CERT_FILE); DERP.MapFile is the DERP map to hand
// to the control server.
type Lab struct {
	*nettest.Lab
	Bins    TSBins
	Net     *nettest.Segment
	Control *nettest.Node
	TLS     *TLS
	DERP    *Derper // nil with NoDerper
	Nodes   []*Tailscaled
	// NodeNS are the tailscaled nodes' namespaces, also with NoDaemons.
	NodeNS []*nettest.Node

	t  testing.TB
	tc TailscaledConfig // completed LabConfig.Tailscaled, for AddTailscaled
}

// NewLab installs (or reuses) the official binaries and builds the lab in
// one call. It skips or fails t like nettest.RequireRoot.
func NewLab(t testing.TB, cfg LabConfig) *Lab {
	t.Helper()
	nettest.RequireRoot(t)
	l := &Lab{Lab: nettest.NewLab(t), t: t}
	l.Bins = RequireTailscale(t)
	l.Net = l.NewSegment()
	l.Control = l.NewNode("control", l.Net)
	var err error
	if l.TLS, err = NewTLS(l.Dir(), l.Control.Addr.String()); err != nil {
		t.Fatal(err)
	}
	var derpNode *nettest.Node
	if !cfg.NoDerper {
		derpNode = l.NewNode("derp", l.Net)
	}
	for i := range cfg.Nodes {
		l.NodeNS = append(l.NodeNS, l.NewNode(fmt.Sprintf("ts%d", i+1), l.Net))
	}
	if derpNode != nil {
		l.DERP = StartDerper(t, derpNode, l.Bins)
	}
	l.tc = cfg.Tailscaled
	if l.tc.Tun == "" && cfg.Userspace {
		l.tc.Tun = Userspace
	}
	if l.tc.CAFile == "" {
		l.tc.CAFile = l.TLS.CAFile
	}
	if l.DERP != nil {
		l.tc.DERPOverHTTP = true
	}
	if cfg.NoDaemons {
		return l
	}
	for _, n := range l.NodeNS {
		l.Nodes = append(l.Nodes, StartTailscaled(t, n, l.Bins, l.tc))
	}
	return l
}

// AddTailscaled starts an official tailscaled with the lab's configuration
// in node, for instance one created behind a NAT:
//
//	_, inner := lab.NewNAT("nat1", lab.Net)
//	d := lab.AddTailscaled(lab.NewNode("ts9", inner))
//
// It is appended to Nodes.
func (l *Lab) AddTailscaled(node *nettest.Node) *Tailscaled {
	l.t.Helper()
	d := StartTailscaled(l.t, node, l.Bins, l.tc)
	l.Nodes = append(l.Nodes, d)
	return d
}

// ControlURL is http://<control address>:port, the --login-server value for
// a control server listening on port in the control node.
func (l *Lab) ControlURL(port int) string {
	return fmt.Sprintf("http://%s:%d", l.Control.Addr, port)
}
