package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
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
			if typ != "disco" {
				fmt.Fprintf(c.env.Stderr, "note: weftd answers --%s with a disco ping (same path, no %s packet through WireGuard yet)\n", strings.ToLower(typ), typ)
			}
			anyPong := false
			for i := 0; *num == 0 || i < *num; i++ {
				pctx, cancel := context.WithTimeout(ctx, *timeout)
				res, err := lc.Ping(pctx, ip, typ)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
					c.outf("ping %q timed out\n", ip.String())
					continue
				}
				if err != nil {
					return err
				}
				if res.Err != "" {
					return errors.New(res.Err)
				}
				via := res.Endpoint
				if res.DERPRegionID != 0 {
					via = fmt.Sprintf("DERP(%s)", res.DERPRegionCode)
				}
				c.outf("pong from %s (%s) via %s in %v\n", res.NodeName, res.NodeIP, via,
					time.Duration(res.LatencySeconds*float64(time.Second)).Round(time.Millisecond))
				anyPong = true
				if *untilDirect && res.Endpoint != "" {
					return nil
				}
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			if !anyPong {
				return errors.New("no reply")
			}
			if *untilDirect {
				return errors.New("direct connection not established")
			}
			return nil
		},
	}
}
