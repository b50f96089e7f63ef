package interop

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
)

// statusCLI is what the official daemon and weftd share for the scenarios:
// a CLI that prints tailscale's `status --json` for one daemon process.
type statusCLI struct {
	t      testing.TB
	node   string // node name, for messages
	daemon string // "tailscaled" or "weftd"
	cli    string // "tailscale" or "weft"
	proc   *nettest.Proc
	run    func(args ...string) (string, error)
}

func (c statusCLI) statusJSON() (*Status, error) {
	out, err := c.run("status", "--json")
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("decode %s status --json: %w\n%s", c.cli, err, out)
	}
	return &st, nil
}

// waitState waits up to timeout for BackendState to be one of states and
// fails the test otherwise.
func (c statusCLI) waitState(timeout time.Duration, states ...string) *Status {
	c.t.Helper()
	var st *Status
	nettest.WaitFor(c.t, timeout, func() error {
		if exited, err := c.proc.Exited(); exited {
			return fmt.Errorf("%s: %s exited (%v)", c.node, c.daemon, err)
		}
		var err error
		if st, err = c.statusJSON(); err != nil {
			return err
		}
		if !slices.Contains(states, st.BackendState) {
			return fmt.Errorf("%s: BackendState %q, want one of %q (health %q)", c.node, st.BackendState, states, st.Health)
		}
		return nil
	})
	return st
}

// ipv4 returns the first tailnet IPv4 address from a fresh status.
func (c statusCLI) ipv4() (netip.Addr, error) {
	st, err := c.statusJSON()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range st.TailscaleIPs {
		if a.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no tailnet IPv4 (state %s)", c.node, st.BackendState)
}

// waitAnswering waits until the daemon answers `status`, failing with the
// tail of its log if it exits first.
func (c statusCLI) waitAnswering() {
	c.t.Helper()
	nettest.WaitFor(c.t, 30*time.Second, func() error {
		if exited, err := c.proc.Exited(); exited {
			return fmt.Errorf("%s exited (%v):\n%s", c.daemon, err, c.proc.Tail(30))
		}
		_, err := c.statusJSON()
		return err
	})
}

// upArgs is the `up` command line of every scenario: --login-server,
// --accept-dns=false (the lab has no DNS and the host's must stay
// untouched), --hostname, a 90 s --timeout, --auth-key when given, then
// extra flags, which come last and win.
func upArgs(loginServer, authKey, hostname string, extra []string) []string {
	args := []string{"up", "--login-server=" + loginServer, "--accept-dns=false", "--hostname=" + hostname, "--timeout=90s"}
	if authKey != "" {
		args = append(args, "--auth-key="+authKey)
	}
	return append(args, extra...)
}
