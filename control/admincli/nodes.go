package admincli

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"weft.dev/weft/control/admin"
)

func nodesCmd() *command {
	return &command{
		name:  "nodes",
		short: "manage nodes: list, approve logins, rename, expire, delete, pin addresses, tag",
		long:  "NODE is a node's numeric ID or its name (see: weft-control nodes list).",
		sub: []*command{
			{
				name: "list", aliases: []string{"ls"}, short: "list nodes", maxArgs: 0,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					user := fs.String("user", "", "only the nodes of the user `NAME`")
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						nodes, err := c.Nodes(ctx, *user)
						if err != nil {
							return err
						}
						if e.g.json {
							return e.printJSON(nodes)
						}
						return e.nodeTable(nodes)
					})
				},
			},
			{
				name: "show", args: "NODE", short: "show one node", minArgs: 1, maxArgs: 1,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						n, err := c.Node(ctx, args[0])
						if err != nil {
							return err
						}
						if e.g.json {
							return e.printJSON(n)
						}
						return e.nodeTable([]admin.Node{n})
					})
				},
			},
			{
				name: "pending", short: "list interactive logins waiting for approval", maxArgs: 0,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						logins, err := c.PendingLogins(ctx)
						if err != nil {
							return err
						}
						if e.g.json {
							return e.printJSON(logins)
						}
						var rows [][]string
						for _, l := range logins {
							rows = append(rows, []string{l.ID, orDash(l.Hostname), l.NodeKey, e.when(l.Created, "-"), e.when(l.Expires, "-")})
						}
						return e.table([]string{"ID", "Hostname", "Node key", "Waiting since", "Expires"}, rows)
					})
				},
			},
			{
				name: "register", args: "--user USER ID", short: "approve an interactive login for a user", minArgs: 1, maxArgs: 1,
				long: "ID is the login ID at the end of the URL the client printed\n(the whole URL works too); see waiting logins with: weft-control nodes pending",
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					user := fs.String("user", "", "`USER` that will own the node (required)")
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						if *user == "" {
							return fmt.Errorf("missing --user: say which user owns the node, e.g. --user alice (list users with: weft-control users list)")
						}
						n, err := c.RegisterNode(ctx, args[0], *user)
						if err != nil {
							return err
						}
						return e.result(n, "Registered node %s (ID %d) for user %s: %s\n", n.Name, n.ID, n.User, addrs(n))
					})
				},
			},
			{
				name: "rename", args: "NODE NEWNAME", short: "give a node a new name (its MagicDNS label)", minArgs: 2, maxArgs: 2,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						n, err := c.RenameNode(ctx, args[0], args[1])
						if err != nil {
							return err
						}
						return e.result(n, "Renamed node %d to %s\n", n.ID, n.Name)
					})
				},
			},
			{
				name: "expire", args: "NODE", short: "expire a node's key now; it must log in again", minArgs: 1, maxArgs: 1,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						n, err := c.ExpireNode(ctx, args[0])
						if err != nil {
							return err
						}
						return e.result(n, "Expired node %s (ID %d); it must log in again\n", n.Name, n.ID)
					})
				},
			},
			{
				name: "delete", aliases: []string{"rm"}, args: "NODE", short: "delete a node", minArgs: 1, maxArgs: 1,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					force := fs.Bool("force", false, "delete the node even while it is online")
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						n, err := c.Node(ctx, args[0])
						if err != nil {
							return err
						}
						if n.Online && !*force {
							return fmt.Errorf("node %s (ID %d) is online; deleting it cuts it off the network: pass --force to delete it anyway", n.Name, n.ID)
						}
						// Delete by ID: the name could move to another node
						// between the two calls.
						if err := c.DeleteNode(ctx, strconv.FormatInt(n.ID, 10)); err != nil {
							return err
						}
						if !e.g.json {
							fmt.Fprintf(e.stdout, "Deleted node %s (ID %d)\n", n.Name, n.ID)
						}
						return nil
					})
				},
			},
			{
				name: "set-ip", args: "NODE IP", short: "pin a node's IPv4 or IPv6 address", minArgs: 2, maxArgs: 2,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						n, err := c.SetNodeIP(ctx, args[0], args[1])
						if err != nil {
							return err
						}
						return e.result(n, "Node %s (ID %d) now has addresses %s\n", n.Name, n.ID, addrs(n))
					})
				},
			},
			{
				name: "tag", args: "NODE tag:a,tag:b", short: "replace a node's tags (\"\" removes them)", minArgs: 2, maxArgs: 2,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						n, err := c.SetNodeTags(ctx, args[0], splitList(args[1]))
						if err != nil {
							return err
						}
						return e.result(n, "Node %s (ID %d) tags: %s\n", n.Name, n.ID, list(n.Tags))
					})
				},
			},
		},
	}
}

func addrs(n admin.Node) string {
	var s []string
	if n.IPv4.IsValid() {
		s = append(s, n.IPv4.String())
	}
	if n.IPv6.IsValid() {
		s = append(s, n.IPv6.String())
	}
	return orDash(strings.Join(s, ","))
}

func (e *env) nodeTable(nodes []admin.Node) error {
	var rows [][]string
	for _, n := range nodes {
		exp := e.when(n.Expiry, "never")
		if n.Expired {
			exp += " (expired)"
		}
		rows = append(rows, []string{
			strconv.FormatInt(n.ID, 10), n.Name, orDash(n.Hostname), n.User, addrs(n), list(n.Tags),
			yesNo(n.Online), e.when(n.LastSeen, "never"), exp,
		})
	}
	return e.table([]string{"ID", "Name", "Hostname", "User", "Addresses", "Tags", "Online", "Last seen", "Expiry"}, rows)
}
