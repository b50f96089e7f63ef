package admincli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"weft.dev/weft/control/admin"
)

func keysCmd() *command {
	return &command{
		name:    "keys",
		aliases: []string{"preauthkeys"},
		short:   "manage pre-auth keys, which register nodes without interactive login",
		sub: []*command{
			{
				name: "create", args: "--user NAME", short: "create a pre-auth key and print it", maxArgs: 0,
				long: "Prints only the key on stdout, so that scripts can do:\n" +
					"  KEY=$(weft-control keys create --user alice)\n" +
					"  tailscale up --login-server=https://control.example.com --auth-key=$KEY",
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					user := fs.String("user", "", "`NAME` of the user the key registers nodes for (required)")
					reusable := fs.Bool("reusable", false, "allow the key to register more than one node")
					ephemeral := fs.Bool("ephemeral", false, "register ephemeral nodes, deleted soon after they go offline")
					tags := fs.String("tags", "", "comma-separated `TAGS` for the nodes, e.g. tag:server,tag:prod")
					expiry := fs.String("expiry", "1h", "how long the key is valid (a `DURATION`: 30m, 24h, 90d)")
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						if *user == "" {
							return fmt.Errorf("missing --user: say which user the key is for, e.g. --user alice (list users with: weft-control users list)")
						}
						k, err := c.CreatePreAuthKey(ctx, admin.CreatePreAuthKeyRequest{
							User: *user, Reusable: *reusable, Ephemeral: *ephemeral, Tags: splitList(*tags), Expiry: *expiry,
						})
						if err != nil {
							return err
						}
						return e.result(k, "%s\n", k.Key)
					})
				},
			},
			{
				name: "list", aliases: []string{"ls"}, short: "list pre-auth keys (never their secret)", maxArgs: 0,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					user := fs.String("user", "", "only the keys of the user `NAME`")
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						keys, err := c.PreAuthKeys(ctx, *user)
						if err != nil {
							return err
						}
						if e.g.json {
							return e.printJSON(keys)
						}
						var rows [][]string
						for _, k := range keys {
							exp := e.when(k.Expiration, "never")
							if k.Expired {
								exp += " (expired)"
							}
							rows = append(rows, []string{
								strconv.FormatInt(k.ID, 10), k.Prefix, k.User, yesNo(k.Reusable), yesNo(k.Ephemeral),
								yesNo(k.Used), list(k.Tags), exp, e.when(k.Created, "-"),
							})
						}
						return e.table([]string{"ID", "Prefix", "User", "Reusable", "Ephemeral", "Used", "Tags", "Expiration", "Created"}, rows)
					})
				},
			},
			{
				name: "expire", args: "PREFIX", short: "expire a pre-auth key now", minArgs: 1, maxArgs: 1,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						k, err := c.ExpirePreAuthKey(ctx, args[0])
						if err != nil {
							return err
						}
						return e.result(k, "Expired pre-auth key %s\n", k.Prefix)
					})
				},
			},
		},
	}
}

func apikeysCmd() *command {
	return &command{
		name:  "apikeys",
		short: "manage API keys for the remote admin API (--server)",
		sub: []*command{
			{
				name: "create", short: "create an API key and print it", maxArgs: 0,
				long: "Prints only the key on stdout. Use it from another machine with:\n" +
					"  WEFT_API_KEY=KEY weft-control --server https://control.example.com nodes list",
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					expiry := fs.String("expiry", "90d", "how long the key is valid (a `DURATION`: 24h, 90d)")
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						k, err := c.CreateAPIKey(ctx, *expiry)
						if err != nil {
							return err
						}
						return e.result(k, "%s\n", k.Key)
					})
				},
			},
			{
				name: "list", aliases: []string{"ls"}, short: "list API keys (never their secret)", maxArgs: 0,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						keys, err := c.APIKeys(ctx)
						if err != nil {
							return err
						}
						if e.g.json {
							return e.printJSON(keys)
						}
						var rows [][]string
						for _, k := range keys {
							exp := e.when(k.Expiration, "never")
							if k.Expired {
								exp += " (expired)"
							}
							rows = append(rows, []string{strconv.FormatInt(k.ID, 10), k.Prefix, exp, e.when(k.LastUsed, "never"), e.when(k.Created, "-")})
						}
						return e.table([]string{"ID", "Prefix", "Expiration", "Last used", "Created"}, rows)
					})
				},
			},
			{
				name: "expire", args: "PREFIX", short: "expire an API key now", minArgs: 1, maxArgs: 1,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						k, err := c.ExpireAPIKey(ctx, args[0])
						if err != nil {
							return err
						}
						return e.result(k, "Expired API key %s\n", k.Prefix)
					})
				},
			},
		},
	}
}
