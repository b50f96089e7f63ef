package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func (c *cli) logoutCmd() *ffcli.Command {
	fs := newFlagSet("logout", c.env.Stderr)
	return &ffcli.Command{
		Name:       "logout",
		ShortUsage: "weft logout",
		ShortHelp:  "Disconnect from weft and expire current node key",
		LongHelp: strings.TrimSpace(`
"weft logout" brings the network down and invalidates
the current node key, forcing a future use of it to cause
a reauthentication.
`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("too many non-flag arguments: %q", args)
			}
			return c.client().Logout(ctx)
		},
	}
}
