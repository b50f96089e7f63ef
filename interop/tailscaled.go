package interop

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"weft.dev/weft/internal/nettest"
)

// Userspace is the --tun value that makes tailscaled use netstack instead of
// a kernel TUN device.
const Userspace = "userspace-networking"

// TailscaledConfig tunes [StartTailscaled]. The zero value runs TUN mode on
// tailscale0, UDP port 41641, trusting the system roots.
type TailscaledConfig struct {
	// Tun is the --tun value: an interface name, or [Userspace].
	Tun string
	// Port is the WireGuard/disco UDP port (--port); 0 means 41641.
	Port int
	// CAFile becomes SSL_CERT_FILE, e.g. a [TLS].CAFile.
	CAFile string
	// DERPOverHTTP sets TS_DEBUG_USE_DERP_HTTP=1, needed for `derper -dev`.
	DERPOverHTTP bool
	// Env and Args are added to the daemon's environment and flags.
	Env  []string
	Args []string
}

// Tailscaled is an official tailscaled running in a node, with its state,
// socket and logs in its own directory.
type Tailscaled struct {
	Node *nettest.Node
	Proc *nettest.Proc
	// Dir holds tailscaled.state, tailscaled.sock and the daemon's logs.
	Dir    string
	Socket string
	t      testing.TB
	bins   TSBins
}

// EnsureTUN creates /dev/net/tun (character device 10:200) if it is
// missing, as it is in some containers.
func EnsureTUN() error {
	if _, err := os.Stat("/dev/net/tun"); err == nil {
		return nil
	}
	if err := os.MkdirAll("/dev/net", 0o755); err != nil {
		return err
	}
	err := unix.Mknod("/dev/net/tun", unix.S_IFCHR|0o666, int(unix.Mkdev(10, 200)))
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("mknod /dev/net/tun: %w", err)
	}
	return nil
}

// StartTailscaled starts the official daemon in node and waits until its
// LocalAPI answers. Nothing is uploaded (--no-logs-no-support and
// TS_NO_LOGS_NO_SUPPORT), the port mapper is off, and in TUN mode the
// firewall is driven through nftables inside the namespace.
func StartTailscaled(t testing.TB, node *nettest.Node, bins TSBins, cfg TailscaledConfig) *Tailscaled {
	t.Helper()
	if cfg.Tun == "" {
		cfg.Tun = "tailscale0"
	}
	if cfg.Port == 0 {
		cfg.Port = 41641
	}
	if cfg.Tun != Userspace {
		if err := EnsureTUN(); err != nil {
			t.Fatal(err)
		}
	}
	d := &Tailscaled{Node: node, t: t, bins: bins, Dir: filepath.Join(node.Lab().Dir(), node.Name+"-tailscaled")}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	d.Socket = filepath.Join(d.Dir, "tailscaled.sock")
	if len(d.Socket) > 100 { // sun_path holds 108 bytes
		short, err := os.MkdirTemp("", "wft-sock-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(short) })
		d.Socket = filepath.Join(short, node.Name+".sock")
	}
	args := append([]string{
		bins.Tailscaled,
		"--state=" + filepath.Join(d.Dir, "tailscaled.state"),
		"--statedir=" + d.Dir,
		"--socket=" + d.Socket,
		"--tun=" + cfg.Tun,
		"--port=" + strconv.Itoa(cfg.Port),
		"--no-logs-no-support",
	}, cfg.Args...)
	env := []string{
		"TS_LOGS_DIR=" + d.Dir,
		"TS_NO_LOGS_NO_SUPPORT=true",
		"TS_DISABLE_PORTMAPPER=1",
		"TS_DEBUG_FIREWALL_MODE=nftables",
	}
	if cfg.CAFile != "" {
		env = append(env, "SSL_CERT_FILE="+cfg.CAFile)
	}
	if cfg.DERPOverHTTP {
		env = append(env, "TS_DEBUG_USE_DERP_HTTP=1")
	}
	d.Proc = node.Start(nettest.Cmd{Name: "tailscaled", Args: args, Env: append(env, cfg.Env...)})
	d.statusCLI().waitAnswering()
	return d
}

// Tailscale runs the official CLI against this daemon's socket, inside the
// node (so commands such as netcheck probe from the node's network), and
// returns its stdout; stderr is part of the error. It gives up after 60s.
func (d *Tailscaled) Tailscale(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return d.TailscaleContext(ctx, args...)
}

// TailscaleContext is Tailscale bounded by ctx instead of 60s.
func (d *Tailscaled) TailscaleContext(ctx context.Context, args ...string) (string, error) {
	full := append([]string{d.bins.Tailscale, "--socket=" + d.Socket}, args...)
	return nettest.Output(ctx, d.Node.NS, full...)
}

// Up runs `tailscale up` with --login-server, --auth-key (when not empty),
// --accept-dns=false (the lab has no DNS and the host's must stay
// untouched), --hostname=<node name> and a 90s --timeout; extra flags come
// last and win.
func (d *Tailscaled) Up(loginServer, authKey string, extra ...string) error {
	args := upArgs(loginServer, authKey, d.Node.Name, extra)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	_, err := d.TailscaleContext(ctx, args...)
	return err
}

// Status is the subset of `tailscale status --json` (ipnstate.Status) the
// scenarios check.
type Status struct {
	Version      string
	TUN          bool
	BackendState string // NoState, NeedsLogin, NeedsMachineAuth, Stopped, Starting, Running
	AuthURL      string
	HaveNodeKey  bool
	TailscaleIPs []netip.Addr
	Self         *PeerStatus
	Health       []string
	// Peer is keyed by node public key ("nodekey:...").
	Peer           map[string]*PeerStatus
	MagicDNSSuffix string
	CurrentTailnet *struct {
		Name            string
		MagicDNSSuffix  string
		MagicDNSEnabled bool
	}
}

// PeerStatus is the subset of ipnstate.PeerStatus the scenarios check.
type PeerStatus struct {
	ID            string
	PublicKey     string
	HostName      string
	DNSName       string
	OS            string
	UserID        int64
	TailscaleIPs  []netip.Addr
	AllowedIPs    []netip.Prefix
	PrimaryRoutes []netip.Prefix
	Tags          []string
	Addrs         []string
	CurAddr       string // direct ip:port in use, "" when relayed
	Relay         string // home DERP region code
	RxBytes       int64
	TxBytes       int64
	LastHandshake time.Time
	Online        bool
	Active        bool
	ExitNode      bool
	InNetworkMap  bool
	InMagicSock   bool
	InEngine      bool
	Expired       bool
	KeyExpiry     *time.Time
}

func (d *Tailscaled) statusCLI() statusCLI {
	return statusCLI{t: d.t, node: d.Node.Name, daemon: "tailscaled", cli: "tailscale", proc: d.Proc, run: d.Tailscale}
}

// StatusJSON runs `tailscale status --json` and decodes it.
func (d *Tailscaled) StatusJSON() (*Status, error) { return d.statusCLI().statusJSON() }

// WaitState waits up to timeout for BackendState to be one of states and
// returns that status; it fails the test otherwise. Call it from the test
// goroutine.
func (d *Tailscaled) WaitState(timeout time.Duration, states ...string) *Status {
	d.t.Helper()
	return d.statusCLI().waitState(timeout, states...)
}

// WaitRunning waits up to timeout for BackendState Running.
func (d *Tailscaled) WaitRunning(timeout time.Duration) *Status {
	d.t.Helper()
	return d.WaitState(timeout, "Running")
}

// IPv4 returns the node's first Tailscale IPv4 address from a fresh status.
func (d *Tailscaled) IPv4() (netip.Addr, error) { return d.statusCLI().ipv4() }
