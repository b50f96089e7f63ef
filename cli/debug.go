package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/peterbourgon/ff/v3/ffcli"

	"weft.dev/weft/node/ipn"
)

func (c *cli) debugCmd() *ffcli.Command {
	fs := newFlagSet("debug", c.env.Stderr)
	printJSON := func(v any, err error) error {
		if err != nil {
			return err
		}
		js, err := json.MarshalIndent(v, "", "\t")
		if err != nil {
			return err
		}
		c.outf("%s\n", js)
		return nil
	}
	raw := func(path string) func(ctx context.Context, args []string) error {
		return func(ctx context.Context, args []string) error {
			b, err := c.client().Raw(ctx, path)
			if err != nil {
				return err
			}
			_, err = c.env.Stdout.Write(b)
			return err
		}
	}
	watchFS := newFlagSet("watch-ipn", c.env.Stderr)
	watchNetmap := watchFS.Bool("netmap", true, "include netmap in messages")
	watchInitial := watchFS.Bool("initial", false, "include initial status")
	watchCount := watchFS.Int("count", 0, "exit after printing this many statuses, or 0 to keep going forever")
	sub := func(name, help string, exec func(context.Context, []string) error) *ffcli.Command {
		return &ffcli.Command{Name: name, ShortUsage: "weft debug " + name, ShortHelp: help, FlagSet: newFlagSet(name, c.env.Stderr), Exec: exec}
	}
	return &ffcli.Command{
		Name:       "debug",
		ShortUsage: "weft debug <debug-flags | subcommand>",
		ShortHelp:  "Debug commands",
		LongHelp:   `"weft debug" contains misc debug facilities; it is not a stable interface.`,
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown debug subcommand %q", args[0])
			}
			return errors.New("weft debug: subcommand required; see weft debug --help")
		},
		Subcommands: []*ffcli.Command{
			sub("prefs", "Print prefs", func(ctx context.Context, args []string) error {
				return printJSON(c.client().Prefs(ctx))
			}),
			sub("daemon-goroutines", "Print weftd's goroutines", raw("goroutines")),
			sub("metrics", "Print weftd's metrics", raw("metrics")),
			sub("hostinfo", "Print the Hostinfo weftd sends to control", func(ctx context.Context, args []string) error {
				return printJSON(c.client().Hostinfo(ctx))
			}),
			sub("derp-map", "Print DERP map", func(ctx context.Context, args []string) error {
				return printJSON(c.client().DERPMap(ctx))
			}),
			sub("restun", "Force a magicsock restun", func(ctx context.Context, args []string) error {
				return c.client().DebugAction(ctx, "restun")
			}),
			sub("rebind", "Force a magicsock rebind", func(ctx context.Context, args []string) error {
				return c.client().DebugAction(ctx, "rebind")
			}),
			sub("local-creds", "Print how weftd sees this user and what it may do", func(ctx context.Context, args []string) error {
				return printJSON(c.client().LocalCreds(ctx))
			}),
			sub("env", "Print the CLI's environment", func(ctx context.Context, args []string) error {
				env := slices.Clone(c.env.Environ())
				slices.Sort(env)
				for _, e := range env {
					c.outf("%s\n", e)
				}
				return nil
			}),
			{
				Name:       "watch-ipn",
				ShortUsage: "weft debug watch-ipn",
				ShortHelp:  "Subscribe to IPN message bus",
				FlagSet:    watchFS,
				Exec: func(ctx context.Context, args []string) error {
					var mask ipn.NotifyWatchOpt
					if *watchNetmap {
						mask |= ipn.NotifyWatchNetMap
					}
					if *watchInitial {
						mask |= ipn.NotifyInitialState | ipn.NotifyInitialPrefs | ipn.NotifyInitialNetMap
					}
					w, err := c.client().WatchIPNBus(ctx, mask)
					if err != nil {
						return err
					}
					defer w.Close()
					for i := 0; *watchCount == 0 || i < *watchCount; i++ {
						n, err := w.Next()
						if err != nil {
							if ctx.Err() != nil {
								return nil
							}
							return err
						}
						if err := printJSON(n, nil); err != nil {
							return err
						}
					}
					return nil
				},
			},
		},
	}
}
