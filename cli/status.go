package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"weft.dev/weft/node/ipn"
)

func (c *cli) statusCmd() *ffcli.Command {
	fs := newFlagSet("status", c.env.Stderr)
	asJSON := fs.Bool("json", false, "output in JSON format (WARNING: format subject to change)")
	peers := fs.Bool("peers", true, "show status of peers")
	self := fs.Bool("self", true, "show status of local machine")
	active := fs.Bool("active", false, "filter output to only peers with active sessions (not applicable to web mode)")
	header := fs.Bool("header", false, "show column headers in table format")
	return &ffcli.Command{
		Name:       "status",
		ShortUsage: "weft status [--active] [--json]",
		ShortHelp:  "Show state of weftd and its connections",
		LongHelp: strings.TrimSpace(`
JSON FORMAT

Warning: this format has changed in the past and will change in the future.

The JSON keeps the field names of "tailscale status --json" (ipnstate.Status)
so that existing scripts keep working.
`),
		FlagSet: fs,
		Exec: func(ctx context.Context, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected non-flag arguments to 'weft status'")
			}
			lc := c.client()
			var st *ipn.Status
			var err error
			if *peers {
				st, err = lc.Status(ctx)
			} else {
				st, err = lc.StatusWithoutPeers(ctx)
			}
			if err != nil {
				return err
			}
			if *asJSON {
				if *active {
					for k, p := range st.Peer {
						if !p.Active {
							delete(st.Peer, k)
						}
					}
				}
				js, err := json.MarshalIndent(st, "", "  ")
				if err != nil {
					return err
				}
				c.outf("%s\n", js)
				return nil
			}
			if desc, ok := isRunningOrStarting(st); !ok {
				c.outf("%s\n", desc)
				if len(st.Health) > 0 {
					c.outf("\n")
					c.printHealth(st)
				}
				return &ExitError{Code: 1}
			}
			c.printStatusTable(st, *self, *peers, *active, *header)
			if len(st.Health) > 0 {
				c.outf("\n")
				c.printHealth(st)
			}
			return nil
		},
	}
}

func (c *cli) printHealth(st *ipn.Status) {
	c.outf("# Health check:\n")
	for _, m := range st.Health {
		c.outf("#     - %s\n", m)
	}
}

func isRunningOrStarting(st *ipn.Status) (string, bool) {
	switch st.BackendState {
	case ipn.Stopped.String():
		return "weft is stopped.", false
	case ipn.NeedsLogin.String():
		s := "Logged out."
		if st.AuthURL != "" {
			s += fmt.Sprintf("\nLog in at: %s", st.AuthURL)
		}
		return s, false
	case ipn.NeedsMachineAuth.String():
		return "Machine is not yet approved by tailnet admin.", false
	case ipn.Running.String(), ipn.Starting.String():
		return st.BackendState, true
	}
	return fmt.Sprintf("unexpected state: %s", st.BackendState), false
}

func (c *cli) printStatusTable(st *ipn.Status, self, peers, active, header bool) {
	w := tabwriter.NewWriter(c.env.Stdout, 0, 0, 2, ' ', 0)
	f := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	if header {
		fmt.Fprintln(w, "IP\tHostname\tOwner\tOS\tStatus\t")
		fmt.Fprintln(w, "--\t--------\t-----\t--\t------\t")
	}
	printPS := func(ps *ipn.PeerStatus, isSelf bool) {
		f("%s\t%s\t%s\t%s\t", firstIP(ps.TailscaleIPs), dnsOrHostname(st, ps), ownerLogin(st, ps), ps.OS)
		anyTraffic := ps.TxBytes != 0 || ps.RxBytes != 0
		offline := ""
		if !ps.Online {
			offline = "; offline" + lastSeenFmt(ps.LastSeen)
		}
		switch {
		case isSelf:
			f("-")
		case !ps.Active:
			switch {
			case ps.ExitNode:
				f("idle; exit node%s", offline)
			case ps.ExitNodeOption:
				f("idle; offers exit node%s", offline)
			case anyTraffic:
				f("idle%s", offline)
			case !ps.Online:
				f("offline%s", lastSeenFmt(ps.LastSeen))
			default:
				f("-")
			}
		default:
			f("active; ")
			if ps.ExitNode {
				f("exit node; ")
			} else if ps.ExitNodeOption {
				f("offers exit node; ")
			}
			if ps.Relay != "" && ps.CurAddr == "" {
				f("relay %q", ps.Relay)
			} else if ps.CurAddr != "" {
				f("direct %s", ps.CurAddr)
			}
			if !ps.Online {
				f("%s", offline)
			}
		}
		if anyTraffic {
			f(", tx %d rx %d", ps.TxBytes, ps.RxBytes)
		}
		f("\t\n")
	}
	if self && st.Self != nil {
		printPS(st.Self, true)
	}
	if peers {
		var ps []*ipn.PeerStatus
		for _, p := range st.Peer {
			if p.ShareeNode || (active && !p.Active) {
				continue
			}
			ps = append(ps, p)
		}
		slices.SortFunc(ps, func(a, b *ipn.PeerStatus) int {
			return strings.Compare(dnsOrHostname(st, a), dnsOrHostname(st, b))
		})
		for _, p := range ps {
			printPS(p, false)
		}
	}
	w.Flush()
}

func firstIP(ips []netip.Addr) string {
	if len(ips) == 0 {
		return ""
	}
	return ips[0].String()
}

func dnsOrHostname(st *ipn.Status, ps *ipn.PeerStatus) string {
	name := strings.TrimSuffix(ps.DNSName, ".")
	if st.MagicDNSSuffix != "" {
		name = strings.TrimSuffix(name, "."+st.MagicDNSSuffix)
	}
	if name != "" {
		return name
	}
	return fmt.Sprintf("%q", ps.HostName)
}

func ownerLogin(st *ipn.Status, ps *ipn.PeerStatus) string {
	if len(ps.Tags) > 0 {
		return "tagged-devices"
	}
	u, ok := st.User[ps.UserID]
	if !ok {
		return fmt.Sprint(ps.UserID)
	}
	if i := strings.Index(u.LoginName, "@"); i != -1 {
		return u.LoginName[:i+1]
	}
	return u.LoginName
}

func lastSeenFmt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := max(time.Since(t), time.Minute)
	switch {
	case d < time.Hour:
		return fmt.Sprintf(", last seen %dm ago", int(d.Minutes()))
	case d < 24*time.Hour:
		return fmt.Sprintf(", last seen %dh ago", int(d.Hours()))
	}
	return fmt.Sprintf(", last seen %dd ago", int(d.Hours()/24))
}
