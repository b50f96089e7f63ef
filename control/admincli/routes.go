package admincli

import (
	"context"
	"flag"
	"fmt"
	"strconv"

	"weft.dev/weft/control/admin"
)

func routesCmd() *command {
	change := func(approve bool) func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
			return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
				call := c.UnapproveRoutes
				if approve {
					call = c.ApproveRoutes
				}
				res, err := call(ctx, args[0], splitArgs(args[1:]))
				if err != nil {
					return err
				}
				if res.Warning != "" {
					fmt.Fprintf(e.stderr, "warning: %s\n", res.Warning)
				}
				if e.g.json {
					return e.printJSON(res)
				}
				return e.routesTable([]admin.NodeRoutes{res.NodeRoutes})
			})
		}
	}
	return &command{
		name:  "routes",
		short: "list and approve subnet and exit routes",
		long: "Approving 0.0.0.0/0 or ::/0 approves both (the node becomes an exit node);\n" +
			"unapproving either removes both. ROUTE may also be a comma-separated list.",
		sub: []*command{
			{
				name: "list", aliases: []string{"ls"}, short: "list the routes of every node that has any", maxArgs: 0,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						routes, err := c.Routes(ctx)
						if err != nil {
							return err
						}
						if e.g.json {
							return e.printJSON(routes)
						}
						return e.routesTable(routes)
					})
				},
			},
			{
				name: "approve", args: "NODE ROUTE...", short: "add routes to a node's approved set", minArgs: 2, maxArgs: -1,
				setup: change(true),
			},
			{
				name: "unapprove", args: "NODE ROUTE...", short: "remove routes from a node's approved set", minArgs: 2, maxArgs: -1,
				setup: change(false),
			},
		},
	}
}

// splitArgs accepts routes as separate arguments or comma-separated.
func splitArgs(args []string) []string {
	var out []string
	for _, a := range args {
		out = append(out, splitList(a)...)
	}
	return out
}

func (e *env) routesTable(routes []admin.NodeRoutes) error {
	var rows [][]string
	for _, r := range routes {
		rows = append(rows, []string{strconv.FormatInt(r.NodeID, 10), r.Node, prefixes(r.Advertised), prefixes(r.Approved), prefixes(r.Primary)})
	}
	return e.table([]string{"ID", "Node", "Advertised", "Approved", "Primary"}, rows)
}

func dnsCmd() *command {
	return &command{
		name:  "dns",
		short: "manage custom DNS records served to every node",
		sub: []*command{{
			name:  "records",
			short: "add, list and delete custom A/AAAA records",
			sub: []*command{
				{
					name: "add", args: "NAME [A|AAAA] VALUE", short: "add a record (type inferred from VALUE if left out)", minArgs: 2, maxArgs: 3,
					setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
						return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
							req := admin.DNSRecordRequest{Name: args[0], Value: args[len(args)-1]}
							if len(args) == 3 {
								req.Type = args[1]
							}
							r, err := c.AddDNSRecord(ctx, req)
							if err != nil {
								return err
							}
							return e.result(r, "Added DNS record %d: %s %s %s\n", r.ID, r.Name, r.Type, r.Value)
						})
					},
				},
				{
					name: "list", aliases: []string{"ls"}, short: "list records", maxArgs: 0,
					setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
						return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
							recs, err := c.DNSRecords(ctx)
							if err != nil {
								return err
							}
							if e.g.json {
								return e.printJSON(recs)
							}
							var rows [][]string
							for _, r := range recs {
								rows = append(rows, []string{strconv.FormatInt(r.ID, 10), r.Name, r.Type, r.Value})
							}
							return e.table([]string{"ID", "Name", "Type", "Value"}, rows)
						})
					},
				},
				{
					name: "delete", aliases: []string{"rm"}, args: "ID", short: "delete a record by ID", minArgs: 1, maxArgs: 1,
					setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
						return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
							id, err := strconv.ParseInt(args[0], 10, 64)
							if err != nil {
								return fmt.Errorf("invalid record ID %q: use the numeric ID shown by: weft-control dns records list", args[0])
							}
							if err := c.DeleteDNSRecord(ctx, id); err != nil {
								return err
							}
							if !e.g.json {
								fmt.Fprintf(e.stdout, "Deleted DNS record %d\n", id)
							}
							return nil
						})
					},
				},
			},
		}},
	}
}
