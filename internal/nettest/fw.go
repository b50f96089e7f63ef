package nettest

import (
	"context"
	"fmt"
	"net/netip"
)

// fwTable is the nftables table BlockUDP keeps in a node. It lives only in
// that node's namespace and is independent of tables a daemon under test
// installs there.
const fwTable = "weft_nettest"

// fwRuleset creates the table: a set of blocked peers and base chains that
// drop UDP to and from them. Priority -10 runs it before a default-priority
// filter chain of the program under test.
const fwRuleset = `
table inet ` + fwTable + ` {
	set udp_blocked { type ipv4_addr; }
	chain input {
		type filter hook input priority -10; policy accept;
		meta l4proto udp ip saddr @udp_blocked drop
	}
	chain output {
		type filter hook output priority -10; policy accept;
		meta l4proto udp ip daddr @udp_blocked drop
	}
}
`

// BlockUDP drops all UDP between the node and peer, in both directions,
// with nftables inside the node's namespace. Other protocols still pass.
func (n *Node) BlockUDP(peer netip.Addr) {
	n.lab.t.Helper()
	if err := n.setUDPBlocked(peer, true); err != nil {
		n.lab.t.Fatalf("nettest: BlockUDP %s -> %s: %v", n.Name, peer, err)
	}
}

// UnblockUDP undoes BlockUDP for peer. Both are idempotent.
func (n *Node) UnblockUDP(peer netip.Addr) {
	n.lab.t.Helper()
	if err := n.setUDPBlocked(peer, false); err != nil {
		n.lab.t.Fatalf("nettest: UnblockUDP %s -> %s: %v", n.Name, peer, err)
	}
}

func (n *Node) setUDPBlocked(peer netip.Addr, block bool) error {
	if !peer.Is4() {
		return fmt.Errorf("want an IPv4 address, got %v", peer)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.udpBlocked[peer] == block {
		return nil // nft refuses to delete a missing element; make both idempotent
	}
	if n.udpBlocked == nil {
		if err := n.nft(fwRuleset); err != nil {
			return err
		}
		n.udpBlocked = map[netip.Addr]bool{}
	}
	verb := "add"
	if !block {
		verb = "delete"
	}
	if err := n.nft(fmt.Sprintf("%s element inet %s udp_blocked { %s }\n", verb, fwTable, peer)); err != nil {
		return err
	}
	n.udpBlocked[peer] = block
	return nil
}

// NFT loads an nftables script (nft -f) inside the node's namespace.
func (n *Node) NFT(script string) error {
	return n.nft(script)
}

func (n *Node) nft(script string) error {
	nft, err := LookTool("nft")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), labTimeout)
	defer cancel()
	return toolCmd(ctx, "ip", script, "netns", "exec", n.NS, nft, "-f", "-")
}

// NewNAT creates a router node on outer and a new inner segment behind it:
// the router's eth0 is on outer, its eth1 is the inner segment's first
// address and the inner segment's Gateway, it forwards between them and
// masquerades what leaves eth0 (Linux conntrack: endpoint-independent
// mapping that keeps source ports when it can, an "easy" NAT). Nodes then
// created on the inner segment route through it.
func (l *Lab) NewNAT(name string, outer *Segment) (router *Node, inner *Segment) {
	l.t.Helper()
	router = l.NewNode(name, outer)
	inner = l.NewSegment()
	inner.Gateway = router.Attach(inner)
	l.must(router.Sysctl("net/ipv4/ip_forward", "1"))
	l.must(router.nft(`
table ip weft_nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth0" masquerade
	}
}
`))
	return router, inner
}
