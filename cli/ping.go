package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"weft.dev/weft/node/ipn"
)

func (c *cli) pingCmd() *ffcli.Command {
	fs := newFlagSet("ping", c.env.Stderr)
	verbose := fs.Bool("verbose", false, "verbose output")
	untilDirect := fs.Bool("until-direct", true, "stop once a direct path is established")
	tsmp := fs.Bool("tsmp", false, "do a TSMP-level ping (through WireGuard, but not either host OS stack)")
	icmp := fs.Bool("icmp", false, "do a ICMP-level ping (through WireGuard, but not the local host OS stack)")
	num := fs.Int("c", 10, "max number of pings to send. 0 for infinity.")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout before giving up on a ping")
	_ = verbose
	return &ffcli.Command{
		Name:       "ping",
		ShortUsage: "weft ping <hostname-or-IP>",
		ShortHelp:  "Ping a host at the weft layer, see how it routed",
		LongHelp: strings.TrimSpace(`
The 'weft ping' command pings a peer node from the weft layer
and reports which route it took for each response. The first ping or
so will likely go over DERP (weft's TCP relay protocol) while NAT
traversal finds a direct path through.

If 'weft ping' works but a normal ping does not, that means one
side's operating system firewall is blocking packets.
`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("usage: weft ping <hostname-or-IP>")
			}
			lc := c.client()
			st, err := lc.Status(ctx)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(args[0])
			if err != nil {
				ps, err := findPeer(st, args[0])
				if err != nil {
					return err
				}
				if len(ps.TailscaleIPs) == 0 {
					return fmt.Errorf("peer %q has no addresses", args[0])
				}
				ip = ps.TailscaleIPs[0]
			}
			typ := "disco"
			if *tsmp {
				typ = "TSMP"
			}
			if *icmp {
				typ = "ICMP"
			}
			anyPong := false
			for n := 1; ; n++ {
				pctx, cancel := context.WithTimeout(ctx, *timeout)
				res, err := lc.Ping(pctx, ip, typ)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					c.outf("ping %q timed out\n", ip.String())
					if n == *num {
						if !anyPong {
							return errors.New("no reply")
						}
						return nil
					}
					continue
				}
				if err != nil {
					return err
				}
				if res.Err != "" {
					if res.IsLocalIP {
						c.outf("%s\n", res.Err)
						return nil
					}
					return errors.New(res.Err)
				}
				c.outf("%s\n", pongLine(res, typ))
				anyPong = true
				if *tsmp || *icmp {
					return nil // one answer says the peer's engine or OS is there
				}
				if *untilDirect && res.Endpoint != "" {
					return nil
				}
				if n == *num {
					break
				}
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if *untilDirect {
				return errors.New("direct connection not established")
			}
			return nil
		},
	}
}

// pongLine is how `tailscale ping` prints a pong: the path is the endpoint,
// the DERP region, or for TSMP and ICMP (which report no path) the ping
// type; a PeerAPI port a TSMP pong advertised follows the node's address.
func pongLine(res *ipn.PingResult, typ string) string {
	via := res.Endpoint
	if res.PeerRelay != "" {
		via = fmt.Sprintf("peer-relay(%s)", res.PeerRelay)
	} else if res.DERPRegionID != 0 {
		via = fmt.Sprintf("DERP(%s)", res.DERPRegionCode)
	}
	if via == "" {
		via = typ
	}
	extra := ""
	if res.PeerAPIPort != 0 {
		extra = fmt.Sprintf(", %d", res.PeerAPIPort)
	}
	latency := time.Duration(res.LatencySeconds * float64(time.Second)).Round(time.Millisecond)
	return fmt.Sprintf("pong from %s (%s%s) via %s in %v", res.NodeName, res.NodeIP, extra, via, latency)
}
