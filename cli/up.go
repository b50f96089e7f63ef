package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/skip2/go-qrcode"

	"weft.dev/weft/node/ipn"
	"weft.dev/weft/node/localapi"
)

func (c *cli) upCmd() *ffcli.Command {
	a := new(upArgs)
	fs := c.newUpFlagSet("up", a)
	return &ffcli.Command{
		Name:       "up",
		ShortUsage: "weft up [flags]",
		ShortHelp:  "Connect to weft, logging in if needed",
		LongHelp: strings.TrimSpace(`
"weft up" connects this machine to your weft network,
triggering authentication if necessary.

With no flags, "weft up" brings the network online without
changing any settings. (That is, it's the opposite of "weft
down").

If flags are specified, the flags must be the complete set of desired
settings. An error is returned if any setting would be changed as a
result of an unspecified flag's default value, unless the --reset flag
is also used. (The flags --auth-key, --force-reauth, and --qr are not
considered settings that need to be re-specified when modifying
settings.)
`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("too many non-flag arguments: %q", args)
			}
			return c.runUp(ctx, "up", fs, a)
		},
	}
}

// authKey resolves --auth-key, reading "file:<path>".
func (c *cli) authKey(a *upArgs) (string, error) {
	v := a.authKeyOrFile
	if path, ok := strings.CutPrefix(v, "file:"); ok {
		b, err := c.env.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("reading auth key: %w", err)
		}
		v = strings.TrimSpace(string(b))
	}
	return v, nil
}

func (c *cli) runUp(ctx context.Context, cmd string, fs *flag.FlagSet, a *upArgs) error {
	lc := c.client()
	prefs, err := prefsFromUpArgs(a)
	if err != nil {
		return err
	}
	authKey, err := c.authKey(a)
	if err != nil {
		return err
	}
	st, err := lc.StatusWithoutPeers(ctx)
	if err != nil {
		return err
	}
	if cmd == "login" {
		if st.HaveNodeKey || st.BackendState != ipn.NeedsLogin.String() {
			if _, err := lc.NewProfile(ctx); err != nil {
				return err
			}
		}
	} else {
		cur, err := lc.Prefs(ctx)
		if err != nil {
			return err
		}
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["operator"] && c.env.Username != "" && cur.OperatorUser == c.env.Username {
			prefs.OperatorUser = cur.OperatorUser
		}
		loggedIn := st.HaveNodeKey && st.BackendState != ipn.NeedsLogin.String()
		if fs.NFlag() == 0 && loggedIn && cur.ControlURL != "" {
			// A bare "up": bring the network back without touching settings.
			mp := &ipn.MaskedPrefs{Prefs: ipn.Prefs{WantRunning: true}, WantRunningSet: true}
			if _, err := lc.EditPrefs(ctx, mp); err != nil {
				return err
			}
			return c.waitRunning(ctx, a, nil, false)
		}
		if !a.reset {
			if err := checkForAccidentalSettingReverts(fs, prefs, *cur); err != nil {
				return err
			}
		}
		if cur.ControlURL != "" && prefs.ControlURL != cur.ControlURL && st.HaveNodeKey && !a.forceReauth {
			return errors.New("can't change --login-server without --force-reauth")
		}
	}

	// Watch before starting so that no AuthURL or state change is missed.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := lc.WatchIPNBus(wctx, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := w.Next(); err != nil { // the (empty) first message
		return fmt.Errorf("watching weftd: %w", err)
	}
	if err := lc.Start(ctx, localapi.StartRequest{Prefs: &prefs, AuthKey: authKey, ForceReauth: a.forceReauth}); err != nil {
		return err
	}
	return c.waitRunning(ctx, a, w, a.forceReauth || !st.HaveNodeKey || st.BackendState == ipn.NeedsLogin.String())
}

// waitRunning follows the bus until the backend is Running, printing
// login URLs, or fails on a login error or --timeout. When mustSeeRunning
// is false a current state of Running is enough.
func (c *cli) waitRunning(ctx context.Context, a *upArgs, w *localapi.Watcher, mustSeeRunning bool) error {
	lc := c.client()
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	if w == nil {
		var err error
		if w, err = lc.WatchIPNBus(ctx, ipn.NotifyInitialState); err != nil {
			return err
		}
		defer w.Close()
	}
	type result struct {
		n   *ipn.Notify
		err error
	}
	ch := make(chan result, 1)
	go func() {
		for {
			n, err := w.Next()
			select {
			case ch <- result{n, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	if !mustSeeRunning {
		if st, err := lc.StatusWithoutPeers(ctx); err == nil && st.BackendState == ipn.Running.String() {
			return c.upSuccess(ctx, a, false)
		}
	}
	printedURL, printedApprove := "", false
	for {
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				return c.timeoutError(context.Background())
			}
			return ctx.Err()
		case r := <-ch:
			if r.err != nil {
				return fmt.Errorf("watching weftd: %w", r.err)
			}
			n := r.n
			if n.ErrMessage != nil {
				return fmt.Errorf("backend error: %s", *n.ErrMessage)
			}
			if n.BrowseToURL != nil && *n.BrowseToURL != printedURL {
				printedURL = *n.BrowseToURL
				c.printAuthURL(a, printedURL)
			}
			if n.State == nil {
				continue
			}
			switch *n.State {
			case ipn.Running:
				return c.upSuccess(ctx, a, printedURL != "")
			case ipn.NeedsMachineAuth:
				if !printedApprove {
					printedApprove = true
					p, _ := lc.Prefs(ctx)
					c.errf("\nTo approve your machine, visit (as admin):\n\n\t%s/admin\n\n", strings.TrimRight(p.ControlURL, "/"))
				}
			}
		}
	}
}

func (c *cli) printAuthURL(a *upArgs, u string) {
	if a.json {
		js, _ := json.MarshalIndent(struct{ AuthURL, BackendState string }{u, ipn.NeedsLogin.String()}, "", "  ")
		c.outf("%s\n", js)
	} else {
		c.errf("\nTo authenticate, visit:\n\n\t%s\n\n", u)
	}
	if a.qr {
		q, err := qrcode.New(u, qrcode.Medium)
		if err != nil {
			c.errf("QR code: %v\n", err)
			return
		}
		if a.qrFormat == "large" {
			c.outf("%s\n", q.ToString(false))
		} else {
			c.outf("%s\n", q.ToSmallString(false))
		}
	}
}

func (c *cli) upSuccess(ctx context.Context, a *upArgs, interactive bool) error {
	if a.json {
		js, _ := json.MarshalIndent(struct{ BackendState string }{ipn.Running.String()}, "", "  ")
		c.outf("%s\n", js)
		return nil
	}
	if interactive {
		c.errf("Success.\n")
	}
	return nil
}

// timeoutError is tailscale's message plus the daemon's last problem.
func (c *cli) timeoutError(ctx context.Context) error {
	msg := `timeout waiting for weft to enter a Running state; check health with "weft status"`
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if st, err := c.client().StatusWithoutPeers(ctx); err == nil {
		msg += "\nstate: " + st.BackendState
		for _, h := range st.Health {
			if strings.HasPrefix(h, "control: ") {
				msg += "\nlast error: " + h + "\n(weftd keeps retrying in the background)"
				break
			}
		}
	}
	return errors.New(msg)
}
