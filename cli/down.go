package cli

import (
	"context"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"

	"weft.dev/weft/node/ipn"
)

func (c *cli) downCmd() *ffcli.Command {
	fs := newFlagSet("down", c.env.Stderr)
	fs.String("accept-risk", "", "accept risk and skip confirmation for risk types (accepted for compatibility)")
	return &ffcli.Command{
		Name:       "down",
		ShortUsage: "weft down",
		ShortHelp:  "Disconnect from weft",
		LongHelp:   "\"weft down\" disconnects from weft. To reconnect, run \"weft up\" without flags.",
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("too many non-flag arguments: %q", args)
			}
			lc := c.client()
			st, err := lc.StatusWithoutPeers(ctx)
			if err != nil {
				return err
			}
			if st.BackendState == ipn.Stopped.String() {
				c.errf("weft was already stopped.\n")
				return nil
			}
			_, err = lc.EditPrefs(ctx, &ipn.MaskedPrefs{Prefs: ipn.Prefs{WantRunning: false}, WantRunningSet: true})
			return err
		},
	}
}
