package cli

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func (c *cli) netcheckCmd() *ffcli.Command {
	fs := newFlagSet("netcheck", c.env.Stderr)
	format := fs.String("format", "", `output format; empty (for human-readable), "json" or "json-line"`)
	return &ffcli.Command{
		Name:       "netcheck",
		ShortUsage: "weft netcheck",
		ShortHelp:  "Print an analysis of local network conditions",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			r, err := c.client().Netcheck(ctx)
			if err != nil {
				return err
			}
			if *format != "" {
				js, err := json.MarshalIndent(r, "", "\t")
				if err != nil {
					return err
				}
				c.outf("%s\n", js)
				return nil
			}
			c.outf("\nReport:\n")
			c.outf("\t* UDP: %v\n", r.UDP)
			if r.GlobalV4 != "" {
				c.outf("\t* IPv4: yes, %s\n", r.GlobalV4)
			} else {
				c.outf("\t* IPv4: (no addr found)\n")
			}
			if r.GlobalV6 != "" {
				c.outf("\t* IPv6: yes, %s\n", r.GlobalV6)
			} else {
				c.outf("\t* IPv6: no\n")
			}
			c.outf("\t* Nearest DERP: %d\n", r.PreferredDERP)
			c.outf("\t* DERP latency:\n")
			for _, id := range slices.Sorted(maps.Keys(r.RegionLatency)) {
				c.outf("\t\t- %d: %v\n", id, r.RegionLatency[id].Round(time.Millisecond/10))
			}
			return nil
		},
	}
}
