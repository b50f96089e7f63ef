package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"weft.dev/weft/node/ipn"
)

func (c *cli) ipCmd() *ffcli.Command {
	fs := newFlagSet("ip", c.env.Stderr)
	want1 := fs.Bool("1", false, "only print one IP address")
	want4 := fs.Bool("4", false, "only print IPv4 address")
	want6 := fs.Bool("6", false, "only print IPv6 address")
	return &ffcli.Command{
		Name:       "ip",
		ShortUsage: "weft ip [-1] [-4] [-6] [peer hostname or ip address]",
		ShortHelp:  "Show weft IP addresses",
		LongHelp:   "Show weft IP addresses for peer. Peer defaults to the current machine.",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 1 {
				return errors.New("too many arguments, expected at most one peer")
			}
			if *want4 && *want6 {
				return errors.New("weft ip -4 and -6 are mutually exclusive")
			}
			st, err := c.client().Status(ctx)
			if err != nil {
				return err
			}
			var ips []netip.Addr
			if len(args) == 0 {
				ips = st.TailscaleIPs
			} else {
				ps, err := findPeer(st, args[0])
				if err != nil {
					return err
				}
				ips = ps.TailscaleIPs
			}
			if len(ips) == 0 {
				return fmt.Errorf("no current weft IPs; state: %v", st.BackendState)
			}
			n := 0
			for _, ip := range ips {
				if (*want4 && !ip.Is4()) || (*want6 && !ip.Is6()) {
					continue
				}
				c.outf("%s\n", ip)
				n++
				if *want1 {
					break
				}
			}
			if n == 0 && *want4 {
				return errors.New("no weft IPv4 address")
			}
			if n == 0 && *want6 {
				return errors.New("no weft IPv6 address")
			}
			return nil
		},
	}
}

// findPeer resolves a host name, MagicDNS name or IP among self and peers.
func findPeer(st *ipn.Status, name string) (*ipn.PeerStatus, error) {
	all := []*ipn.PeerStatus{}
	if st.Self != nil {
		all = append(all, st.Self)
	}
	for _, p := range st.Peer {
		all = append(all, p)
	}
	if ip, err := netip.ParseAddr(name); err == nil {
		for _, p := range all {
			for _, a := range p.TailscaleIPs {
				if a == ip {
					return p, nil
				}
			}
		}
		return nil, fmt.Errorf("no peer found with IP %s", ip)
	}
	lname := strings.ToLower(strings.TrimSuffix(name, "."))
	for _, p := range all {
		dns := strings.ToLower(strings.TrimSuffix(p.DNSName, "."))
		base, _, _ := strings.Cut(dns, ".")
		if lname == dns || lname == base || strings.EqualFold(lname, p.HostName) {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no peer found with hostname %q", name)
}
