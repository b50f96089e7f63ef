package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func (c *cli) whoisCmd() *ffcli.Command {
	fs := newFlagSet("whois", c.env.Stderr)
	asJSON := fs.Bool("json", false, "output in JSON format")
	return &ffcli.Command{
		Name:       "whois",
		ShortUsage: "weft whois [--json] ip[:port]",
		ShortHelp:  "Show the machine and user associated with a weft IP (v4 or v6)",
		LongHelp:   "'weft whois' shows the machine and user associated with a weft IP (v4 or v6).",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) != 1 {
				return errors.New("must provide exactly one IP or IP:port argument")
			}
			who, err := c.client().WhoIs(ctx, args[0])
			if err != nil {
				return err
			}
			if *asJSON {
				js, err := json.MarshalIndent(who, "", "  ")
				if err != nil {
					return err
				}
				c.outf("%s\n", js)
				return nil
			}
			w := tabwriter.NewWriter(c.env.Stdout, 10, 5, 5, ' ', 0)
			fmt.Fprintf(w, "Machine:\n")
			fmt.Fprintf(w, "  Name:\t%s\n", strings.TrimSuffix(who.Node.Name, "."))
			fmt.Fprintf(w, "  ID:\t%s\n", who.Node.StableID)
			var addrs []string
			for _, a := range who.Node.Addresses {
				addrs = append(addrs, a.Addr().String())
			}
			fmt.Fprintf(w, "  Addresses:\t%s\n", addrs)
			if len(who.Node.Tags) > 0 {
				fmt.Fprintf(w, "  Tags:\t%s\n", strings.Join(who.Node.Tags, ", "))
			} else if who.UserProfile != nil {
				fmt.Fprintf(w, "User:\n")
				fmt.Fprintf(w, "  Name:\t%s\n", who.UserProfile.LoginName)
				fmt.Fprintf(w, "  ID:\t%d\n", who.UserProfile.ID)
			}
			return w.Flush()
		},
	}
}
