package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func (c *cli) loginCmd() *ffcli.Command {
	a := new(upArgs)
	fs := c.newUpFlagSet("login", a)
	return &ffcli.Command{
		Name:       "login",
		ShortUsage: "weft login [flags]",
		ShortHelp:  "Log in to a weft network",
		LongHelp: strings.TrimSpace(`
"weft login" logs this machine in to a weft network (a control
server given by --login-server). If the machine is already logged in,
the new login is added as another profile: switch between them with
"weft switch" without logging in again.
`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("too many non-flag arguments: %q", args)
			}
			a.reset = true
			return c.runUp(ctx, "login", fs, a)
		},
	}
}
