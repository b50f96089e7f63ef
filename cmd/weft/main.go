// Command weft is weft's CLI (the role of `tailscale`): the same verbs
// and flags, talking to weftd over its LocalAPI socket. See cli/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"syscall"

	"weft.dev/weft/cli"
	"weft.dev/weft/node/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	uid := os.Getuid()
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	sock := daemon.DefaultSocket(0, os.Getenv)
	if _, err := os.Stat(sock); err != nil && uid != 0 {
		sock = daemon.DefaultSocket(uid, os.Getenv)
	}
	err := cli.Run(ctx, os.Args[1:], cli.Env{
		Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Environ: os.Environ,
		UID: uid, Username: name, DefaultSocket: sock,
	})
	var ee *cli.ExitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.Code)
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
