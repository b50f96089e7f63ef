package admincli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"weft.dev/weft/control/admin"
)

// DefaultStateDir is the state directory the server and these commands use
// when --state-dir is not given.
const DefaultStateDir = "./weft-state"

// Run runs one admin subcommand; args exclude the program name (e.g.
// ["users", "list", "--json"]). It returns the process exit code: 0 on
// success, 1 on any error, which has been printed to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: os.Getenv, loc: time.Local}
	return e.run(ctx, args)
}

// env is one invocation: its output streams, environment and global flags.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	loc            *time.Location // for times in tables
	g              globals
}

// globals are the flags accepted at every level, before or after the
// subcommand.
type globals struct {
	stateDir string
	server   string
	apiKey   string
	json     bool
}

var globalNames = []string{"state-dir", "server", "api-key", "json"}

// command is one node of the subcommand tree: a group (sub set) or a leaf
// (setup set). setup registers the leaf's own flags and returns the
// function that runs it with the positional arguments.
type command struct {
	name    string
	aliases []string
	args    string // positional arguments, for usage
	short   string
	long    string
	minArgs int
	maxArgs int // -1: unbounded
	sub     []*command
	setup   func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) error
}

func (c *command) find(name string) *command {
	for _, s := range c.sub {
		if s.name == name || slices.Contains(s.aliases, name) {
			return s
		}
	}
	return nil
}

func root() *command {
	return &command{
		name:  "weft-control",
		short: "administer a weft coordination server",
		long: "These commands talk to a running weft-control: through the admin socket in\n" +
			"its --state-dir (default " + DefaultStateDir + "), or with --server URL and an API key.\n" +
			"Run the server itself with: weft-control [serve] --state-dir DIR",
		sub: []*command{usersCmd(), keysCmd(), nodesCmd(), routesCmd(), dnsCmd(), policyCmd(), apikeysCmd()},
	}
}

func (e *env) run(ctx context.Context, args []string) int {
	e.g = globals{stateDir: DefaultStateDir}
	return e.dispatch(ctx, root(), []string{"weft-control"}, args)
}

func (e *env) addGlobals(fs *flag.FlagSet) {
	// Each level's flag set starts from the values earlier levels parsed,
	// so a global flag may appear at any level; help shows the real
	// defaults, not those values.
	fs.StringVar(&e.g.stateDir, "state-dir", e.g.stateDir, "state directory `DIR` of the local weft-control; its admin socket is DIR/"+admin.SocketName)
	fs.StringVar(&e.g.server, "server", e.g.server, "`URL` of a remote weft-control to manage instead of the local one (needs --api-key)")
	fs.StringVar(&e.g.apiKey, "api-key", e.g.apiKey, "admin API `KEY` for --server (default: $WEFT_API_KEY)")
	fs.BoolVar(&e.g.json, "json", e.g.json, "print JSON instead of tables")
	fs.Lookup("state-dir").DefValue = DefaultStateDir
	fs.Lookup("server").DefValue = ""
	fs.Lookup("api-key").DefValue = ""
	fs.Lookup("json").DefValue = "false"
}

func (e *env) dispatch(ctx context.Context, c *command, path []string, args []string) int {
	name := strings.Join(path, " ")
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	e.addGlobals(fs)
	if c.sub != nil {
		if err := fs.Parse(args); err != nil {
			return e.flagError(c, fs, name, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			e.usage(e.stderr, c, fs, name)
			fmt.Fprintf(e.stderr, "\n%s: missing command: use one of %s\n", name, subNames(c))
			return 1
		}
		if rest[0] == "help" {
			e.usage(e.stdout, c, fs, name)
			return 0
		}
		s := c.find(rest[0])
		if s == nil {
			fmt.Fprintf(e.stderr, "%s: unknown command %q: use one of %s (see: %s --help)\n", name, rest[0], subNames(c), name)
			return 1
		}
		return e.dispatch(ctx, s, append(path, s.name), rest[1:])
	}
	runLeaf := c.setup(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return e.flagError(c, fs, name, err)
	}
	if len(pos) < c.minArgs || c.maxArgs >= 0 && len(pos) > c.maxArgs {
		fmt.Fprintf(e.stderr, "%s: wrong number of arguments: usage: %s %s (see: %s --help)\n", name, name, c.args, name)
		return 1
	}
	if err := runLeaf(ctx, e, pos); err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

func (e *env) flagError(c *command, fs *flag.FlagSet, name string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		e.usage(e.stdout, c, fs, name)
		return 0
	}
	fmt.Fprintf(e.stderr, "%s: %v (see: %s --help)\n", name, err, name)
	return 1
}

func subNames(c *command) string {
	var s []string
	for _, sub := range c.sub {
		s = append(s, sub.name)
	}
	return strings.Join(s, ", ")
}

// usage prints the help of command c, whose flags are registered on fs.
func (e *env) usage(w io.Writer, c *command, fs *flag.FlagSet, name string) {
	if c.sub != nil {
		fmt.Fprintf(w, "Usage: %s <command> [flags]\n\n", name)
	} else {
		fmt.Fprintf(w, "Usage: %s %s\n\n", name, strings.TrimSpace(c.args+" [flags]"))
	}
	fmt.Fprintln(w, capitalize(c.short)+".")
	if c.long != "" {
		fmt.Fprintf(w, "\n%s\n", c.long)
	}
	if c.sub != nil {
		fmt.Fprintf(w, "\nCommands:\n")
		width := 0
		for _, s := range c.sub {
			width = max(width, len(s.name+" "+s.args))
		}
		for _, s := range c.sub {
			fmt.Fprintf(w, "  %-*s  %s\n", width, strings.TrimSpace(s.name+" "+s.args), s.short)
		}
	}
	var own, global []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if slices.Contains(globalNames, f.Name) {
			global = append(global, f)
		} else {
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		printFlags(w, own)
	}
	fmt.Fprintf(w, "\nGlobal flags (before or after the command):\n")
	printFlags(w, global)
	if c.sub != nil {
		fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's usage.\n", name)
	}
}

func printFlags(w io.Writer, fl []*flag.Flag) {
	for _, f := range fl {
		typ, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if typ != "" {
			line += " " + typ
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, usage)
		if f.DefValue != "" && f.DefValue != "false" {
			fmt.Fprintf(w, " (default %q)", f.DefValue)
		}
		fmt.Fprintln(w)
	}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseInterspersed parses fs allowing flags after positional arguments
// (the flag package alone stops at the first one), returning the
// positional arguments in order. Everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// client connects to the server named by the global flags.
func (e *env) client() (*admin.Client, error) {
	if e.g.server != "" {
		key := e.g.apiKey
		if key == "" {
			key = e.getenv("WEFT_API_KEY")
		}
		return admin.DialHTTP(e.g.server, key)
	}
	return admin.DialUnix(e.g.stateDir)
}

// withClient adapts a function that needs a client to a leaf runner.
func withClient(f func(ctx context.Context, e *env, c *admin.Client, args []string) error) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error {
		c, err := e.client()
		if err != nil {
			return err
		}
		defer c.Close()
		return f(ctx, e, c, args)
	}
}

// IsCommand reports whether args (without the program name) are an admin
// command for Run, skipping global flags written before it, so that
// "weft-control --state-dir DIR nodes list" reaches Run rather than the
// server's flag parser.
func IsCommand(args []string) bool {
	r := root()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return r.find(a) != nil
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch name {
		case "json":
		case "state-dir", "server", "api-key":
			if !hasValue {
				i++
			}
		default:
			return false // a server flag
		}
	}
	return false
}
