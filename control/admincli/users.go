package admincli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"weft.dev/weft/control/admin"
)

func usersCmd() *command {
	return &command{
		name:  "users",
		short: "manage users, who own nodes and pre-auth keys",
		sub: []*command{
			{
				name: "create", args: "NAME", short: "create a user", minArgs: 1, maxArgs: 1,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					display := fs.String("display-name", "", "`NAME` shown in clients (default: the login name)")
					email := fs.String("email", "", "e-mail `ADDRESS` shown in clients")
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						u, err := c.CreateUser(ctx, admin.CreateUserRequest{Name: args[0], DisplayName: *display, Email: *email})
						if err != nil {
							return err
						}
						return e.result(u, "Created user %s (ID %d)\n", u.Name, u.ID)
					})
				},
			},
			{
				name: "list", aliases: []string{"ls"}, short: "list users", maxArgs: 0,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						users, err := c.Users(ctx)
						if err != nil {
							return err
						}
						if e.g.json {
							return e.printJSON(users)
						}
						var rows [][]string
						for _, u := range users {
							rows = append(rows, []string{strconv.FormatInt(u.ID, 10), u.Name, orDash(u.DisplayName), orDash(u.Email), e.when(u.Created, "-")})
						}
						return e.table([]string{"ID", "Name", "Display name", "Email", "Created"}, rows)
					})
				},
			},
			{
				name: "delete", aliases: []string{"rm", "destroy"}, args: "NAME", short: "delete a user that owns no nodes", minArgs: 1, maxArgs: 1,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						if err := c.DeleteUser(ctx, args[0]); err != nil {
							return err
						}
						if !e.g.json {
							fmt.Fprintf(e.stdout, "Deleted user %s\n", args[0])
						}
						return nil
					})
				},
			},
		},
	}
}
