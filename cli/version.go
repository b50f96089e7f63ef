package cli

import (
	"context"
	"encoding/json"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func (c *cli) versionCmd() *ffcli.Command {
	fs := newFlagSet("version", c.env.Stderr)
	daemon := fs.Bool("daemon", false, "also print local node's daemon version")
	asJSON := fs.Bool("json", false, "output in JSON format")
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "weft version [flags]",
		ShortHelp:  "Print weft version",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			var dv string
			if *daemon {
				st, err := c.client().StatusWithoutPeers(ctx)
				if err != nil {
					return err
				}
				dv = st.Version
			}
			if *asJSON {
				js, _ := json.MarshalIndent(struct {
					Short         string
					DaemonVersion string `json:",omitempty"`
				}{c.version(), dv}, "", "  ")
				c.outf("%s\n", js)
				return nil
			}
			c.outf("%s\n", c.version())
			if *daemon {
				c.outf("  daemon: %s\n", dv)
			}
			return nil
		},
	}
}
