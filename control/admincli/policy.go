package admincli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"weft.dev/weft/control/admin"
	"weft.dev/weft/policy"
)

func policyCmd() *command {
	return &command{
		name:  "policy",
		short: "show, check and set the tailnet policy (HuJSON ACLs)",
		long: "The policy is Tailscale's policy file format: groups, hosts, tagOwners,\n" +
			"autoApprovers, acls, ssh and tests. Without one, every node reaches every\n" +
			"other. `check` needs no running server; `set` refuses a file that does not\n" +
			"parse or whose tests fail, and the active policy stays in force.",
		sub: []*command{
			{
				name: "get", aliases: []string{"show"}, short: "print the active policy", maxArgs: 0,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						p, err := c.Policy(ctx)
						if err != nil {
							return err
						}
						if e.g.json {
							return e.printJSON(p)
						}
						if !p.Set {
							_, err = fmt.Fprintln(e.stdout, "No policy is set: every node may reach every other (allow-all). Set one with: weft-control policy set FILE")
							return err
						}
						text := p.Policy
						if !strings.HasSuffix(text, "\n") {
							text += "\n"
						}
						_, err = fmt.Fprint(e.stdout, text)
						return err
					})
				},
			},
			{
				name: "set", args: "FILE", short: "validate, store and apply a policy file", minArgs: 1, maxArgs: 1,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, args []string) error {
						data, err := os.ReadFile(args[0])
						if err != nil {
							return err
						}
						res, err := c.SetPolicy(ctx, string(data))
						if err != nil {
							return located(args[0], err)
						}
						if e.g.json {
							return e.printJSON(res)
						}
						if res.Unchanged {
							_, err = fmt.Fprintf(e.stdout, "Policy unchanged (version %d is already this file)\n", res.Policy.Version)
							return err
						}
						_, err = fmt.Fprintf(e.stdout, "Policy version %d applied; %d nodes' filters or peers changed\n", res.Policy.Version, len(res.AffectedNodes))
						return err
					})
				},
			},
			{
				name: "check", args: "FILE", short: "validate a policy file and run its tests (no server needed)", minArgs: 1, maxArgs: 1,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return func(ctx context.Context, e *env, args []string) error {
						data, err := os.ReadFile(args[0])
						if err != nil {
							return err
						}
						err = policy.Check(data)
						var es policy.Errors
						switch {
						case err == nil:
							_, err = fmt.Fprintf(e.stdout, "%s: OK\n", args[0])
							return err
						case !errors.As(err, &es):
							return err
						}
						if e.g.json {
							if err := e.printJSON(toPolicyErrors(es)); err != nil {
								return err
							}
						} else {
							for _, pe := range es {
								fmt.Fprintf(e.stdout, "%s:%s\n", args[0], pe.Error())
							}
						}
						return fmt.Errorf("%s: %d %s", args[0], len(es), plural(len(es), "problem", "problems"))
					}
				},
			},
			{
				name: "history", short: "list the stored policy versions", maxArgs: 0,
				setup: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
					return withClient(func(ctx context.Context, e *env, c *admin.Client, _ []string) error {
						vs, err := c.PolicyHistory(ctx)
						if err != nil {
							return err
						}
						if e.g.json {
							return e.printJSON(vs)
						}
						var rows [][]string
						for _, v := range vs {
							rows = append(rows, []string{strconv.FormatInt(v.Version, 10), e.when(v.Created, "-"), strconv.Itoa(v.Bytes)})
						}
						return e.table([]string{"Version", "Created", "Bytes"}, rows)
					})
				},
			},
		},
	}
}

func toPolicyErrors(es policy.Errors) []admin.PolicyError {
	out := make([]admin.PolicyError, len(es))
	for i, pe := range es {
		out[i] = admin.PolicyError{Line: pe.Line, Column: pe.Col, Message: pe.Msg}
	}
	return out
}

// located rewrites a refused policy's problems as FILE:line:col: message,
// one per line, the form editors jump to.
func located(file string, err error) error {
	var ae *admin.Error
	if !errors.As(err, &ae) || len(ae.Policy) == 0 {
		return err
	}
	var b strings.Builder
	b.WriteString("policy rejected, the active policy is unchanged:")
	for _, pe := range ae.Policy {
		b.WriteString("\n  ")
		if pe.Line > 0 {
			b.WriteString(file + ":")
		}
		b.WriteString(pe.String())
	}
	return errors.New(b.String())
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
