package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
)

// WeftdConfig tunes [StartWeftd]. The zero value runs TUN mode on weft0,
// UDP port 41641, trusting the system roots, as root.
type WeftdConfig struct {
	// Weftd and Weft are the binaries (see [WeftBins.Require]).
	Weftd, Weft string
	// Tun is the --tun value: an interface name, or [Userspace].
	Tun string
	// Port is --port; 0 means 41641.
	Port int
	// CAFile becomes SSL_CERT_FILE (copied where User can read it).
	CAFile string
	// DERPOverHTTP sets TS_DEBUG_USE_DERP_HTTP=1, needed for `derper -dev`.
	DERPOverHTTP bool
	// Socks5 and HTTPProxy are --socks5-server and
	// --outbound-http-proxy-listen.
	Socks5, HTTPProxy string
	// Debug is --debug (pprof and metrics listener), e.g. "127.0.0.1:6060".
	Debug string
	// User runs weftd as this user through setpriv (userspace mode only);
	// empty runs it as root.
	User string
	// Env and Args are added to the daemon's environment and flags.
	Env  []string
	Args []string
}

// Weftd is a weftd running in a node, with its state, socket and logs in
// its own directory.
type Weftd struct {
	Node *nettest.Node
	Proc *nettest.Proc
	// Dir holds weftd.state and, when short enough, the socket.
	Dir    string
	Socket string
	cfg    WeftdConfig
	t      testing.TB
}

// StartWeftd starts weftd in node and waits until its LocalAPI answers.
func StartWeftd(t testing.TB, node *nettest.Node, cfg WeftdConfig) *Weftd {
	t.Helper()
	if cfg.Tun == "" {
		cfg.Tun = "weft0"
	}
	if cfg.Port == 0 {
		cfg.Port = 41641
	}
	if cfg.Tun != Userspace {
		if err := EnsureTUN(); err != nil {
			t.Fatal(err)
		}
	}
	d := &Weftd{Node: node, cfg: cfg, t: t}
	uid, gid := -1, -1
	if cfg.User != "" {
		u, err := user.Lookup(cfg.User)
		if err != nil {
			t.Fatalf("weftd as %s: %v", cfg.User, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	// A short directory of its own: the socket path must fit sun_path, and
	// a non-root weftd must be able to reach it (the lab directory is 0700
	// root).
	dir, err := os.MkdirTemp("", "wft-"+node.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d.Dir = dir
	d.Socket = filepath.Join(dir, "weftd.sock")
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{}
	if cfg.CAFile != "" {
		ca := filepath.Join(dir, "ca.pem")
		b, err := os.ReadFile(cfg.CAFile)
		if err == nil {
			err = os.WriteFile(ca, b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		env = append(env, "SSL_CERT_FILE="+ca)
	}
	if cfg.DERPOverHTTP {
		env = append(env, "TS_DEBUG_USE_DERP_HTTP=1")
	}
	args := []string{
		cfg.Weftd,
		"--state=" + filepath.Join(dir, "weftd.state"),
		"--statedir=" + dir,
		"--socket=" + d.Socket,
		"--tun=" + cfg.Tun,
		"--port=" + strconv.Itoa(cfg.Port),
	}
	if cfg.Socks5 != "" {
		args = append(args, "--socks5-server="+cfg.Socks5)
	}
	if cfg.HTTPProxy != "" {
		args = append(args, "--outbound-http-proxy-listen="+cfg.HTTPProxy)
	}
	if cfg.Debug != "" {
		args = append(args, "--debug="+cfg.Debug)
	}
	args = append(args, cfg.Args...)
	if uid >= 0 {
		setpriv, err := nettest.LookTool("setpriv")
		if err != nil {
			t.Skipf("running weftd as %s needs setpriv: %v", cfg.User, err)
		}
		args = append([]string{setpriv, "--reuid=" + strconv.Itoa(uid), "--regid=" + strconv.Itoa(gid), "--clear-groups", "--"}, args...)
	}
	d.Proc = node.Start(nettest.Cmd{Name: "weftd", Args: args, Env: append(env, cfg.Env...)})
	d.statusCLI().waitAnswering()
	return d
}

// Weft runs the weft CLI against this daemon's socket inside the node and
// returns its stdout; stderr is part of the error. It gives up after 60s.
func (d *Weftd) Weft(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return d.WeftContext(ctx, args...)
}

// WeftContext is Weft bounded by ctx instead of 60s.
func (d *Weftd) WeftContext(ctx context.Context, args ...string) (string, error) {
	full := append([]string{d.cfg.Weft, "--socket=" + d.Socket}, args...)
	return nettest.Output(ctx, d.Node.NS, full...)
}

// Up runs `weft up` like [Tailscaled.Up]: --login-server, --auth-key,
// --accept-dns=false, --hostname=<node name>, --timeout=90s, then extra.
func (d *Weftd) Up(loginServer, authKey string, extra ...string) error {
	args := upArgs(loginServer, authKey, d.Node.Name, extra)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	out, err := d.WeftContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("weft up: %w\n%s", err, out)
	}
	return nil
}

func (d *Weftd) statusCLI() statusCLI {
	return statusCLI{t: d.t, node: d.Node.Name, daemon: "weftd", cli: "weft", proc: d.Proc, run: d.Weft}
}

// StatusJSON runs `weft status --json` and decodes it (weft's JSON uses
// tailscale's ipnstate field names).
func (d *Weftd) StatusJSON() (*Status, error) { return d.statusCLI().statusJSON() }

// WaitState waits up to timeout for BackendState to be one of states.
func (d *Weftd) WaitState(timeout time.Duration, states ...string) *Status {
	d.t.Helper()
	return d.statusCLI().waitState(timeout, states...)
}

// WaitRunning waits up to timeout for BackendState Running.
func (d *Weftd) WaitRunning(timeout time.Duration) *Status {
	d.t.Helper()
	return d.WaitState(timeout, "Running")
}

// IPv4 returns the node's first tailnet IPv4 address from a fresh status.
func (d *Weftd) IPv4() (netip.Addr, error) { return d.statusCLI().ipv4() }
