package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"weft.dev/weft/node/localapi"
)

// Env is the CLI's environment; tests fill it in, cmd/weft takes the
// process's.
type Env struct {
	Stdout, Stderr io.Writer
	// Getenv reads environment variables (debug env, default socket).
	Getenv func(string) string
	// Environ lists the environment (debug env).
	Environ func() []string
	// UID is the caller's uid (for the sudo hint).
	UID int
	// Username is the caller's login name (for --operator's implicit value).
	Username string
	// DefaultSocket is the socket used when --socket is not given.
	DefaultSocket string
	// Version is the CLI version; empty means the build's.
	Version string
	// ReadFile reads files (--auth-key=file:…); nil is os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

// ExitError asks the caller to exit with Code after the command already
// printed what the user needs to know (like `status` when logged out).
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

type cli struct {
	env    Env
	socket string
	lc     *localapi.Client
}

func (c *cli) outf(format string, a ...any) { fmt.Fprintf(c.env.Stdout, format, a...) }
func (c *cli) errf(format string, a ...any) { fmt.Fprintf(c.env.Stderr, format, a...) }

func (c *cli) client() *localapi.Client {
	if c.lc == nil {
		c.lc = &localapi.Client{Socket: c.socket}
	}
	return c.lc
}

func (c *cli) version() string {
	if c.env.Version != "" {
		return c.env.Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

func newFlagSet(name string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(out)
	return fs
}

// Run runs the weft CLI with args (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Environ == nil {
		env.Environ = func() []string { return nil }
	}
	if env.ReadFile == nil {
		env.ReadFile = os.ReadFile
	}
	c := &cli{env: env}
	rootfs := newFlagSet("weft", env.Stderr)
	rootfs.StringVar(&c.socket, "socket", env.DefaultSocket, "path to weftd socket")

	root := &ffcli.Command{
		Name:       "weft",
		ShortUsage: "weft [flags] <subcommand> [command flags]",
		ShortHelp:  "The easiest, most secure way to use WireGuard.",
		LongHelp: strings.TrimSpace(`
For help on subcommands, add --help after: "weft status --help".

This CLI is still under active development. Commands and flags will
change in the future.
`),
		FlagSet: rootfs,
		Subcommands: []*ffcli.Command{
			c.upCmd(), c.downCmd(), c.loginCmd(), c.logoutCmd(), c.switchCmd(),
			c.statusCmd(), c.ipCmd(), c.whoisCmd(), c.pingCmd(), c.netcheckCmd(),
			c.versionCmd(), c.debugCmd(),
		},
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("weft: unknown subcommand %q", args[0])
			}
			return flag.ErrHelp
		},
		UsageFunc: usageFunc,
	}
	for _, sc := range root.Subcommands {
		setUsage(sc)
	}
	if len(args) == 0 {
		fmt.Fprintln(env.Stderr, usageFunc(root))
		return &ExitError{Code: 0}
	}
	err := root.ParseAndRun(ctx, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if localapi.IsAccessDenied(err) && env.UID != 0 {
		return fmt.Errorf("%v\n\nUse 'sudo weft %s'.\nTo not require root, use 'sudo weft up --operator=$USER' once.", err, strings.Join(args, " "))
	}
	return err
}

func setUsage(c *ffcli.Command) {
	if c.UsageFunc == nil {
		c.UsageFunc = usageFunc
	}
	for _, sc := range c.Subcommands {
		setUsage(sc)
	}
}

// usageFunc is ffcli's usage with tailscale's "USAGE" layout.
func usageFunc(c *ffcli.Command) string { return ffcli.DefaultUsageFunc(c) }
