package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func (c *cli) switchCmd() *ffcli.Command {
	fs := newFlagSet("switch", c.env.Stderr)
	list := fs.Bool("list", false, "list available accounts")
	return &ffcli.Command{
		Name:       "switch",
		ShortUsage: "weft switch <id>\nweft switch --list",
		ShortHelp:  "Switch to a different weft account",
		LongHelp: strings.TrimSpace(`
"weft switch" switches between logged in accounts (profiles). Name
one by its ID, its account (login) name, its nickname or its network
name; "weft switch --list" shows them. The node keeps its identity on
each network: switching back does not log in again.
`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			lc := c.client()
			if *list {
				return c.listProfiles(ctx)
			}
			if len(args) != 1 {
				return errors.New("usage: weft switch <id> (see weft switch --list)")
			}
			cur, err := lc.CurrentProfile(ctx)
			if err != nil {
				return err
			}
			p, err := lc.SwitchProfile(ctx, args[0])
			if err != nil {
				return err
			}
			if p.ID == cur.ID {
				c.outf("Already on account %q\n", p.Name)
				return nil
			}
			c.outf("Switching to account %q\n", p.Name)
			return nil
		},
	}
}

func (c *cli) listProfiles(ctx context.Context) error {
	lc := c.client()
	cur, err := lc.CurrentProfile(ctx)
	if err != nil {
		return err
	}
	ps, err := lc.Profiles(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(c.env.Stdout, 2, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTailnet\tAccount\tLogin server")
	for _, p := range ps {
		name := p.Name
		if name == "" {
			name = "(not logged in)"
		}
		if p.ID == cur.ID {
			name += "*"
		}
		tailnet := p.NetworkProfile.DomainName
		if p.Nickname != "" {
			tailnet = p.Nickname
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, tailnet, name, p.ControlURL)
	}
	return tw.Flush()
}
