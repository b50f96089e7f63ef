package cli

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"weft.dev/weft/node/ipn"
)

// upArgs are the flags of `up` and `login`.
type upArgs struct {
	qr                     bool
	qrFormat               string
	reset                  bool
	server                 string
	acceptRoutes           bool
	acceptDNS              bool
	exitNodeIP             string
	exitNodeAllowLANAccess bool
	shieldsUp              bool
	runSSH                 bool
	forceReauth            bool
	advertiseRoutes        string
	advertiseDefaultRoute  bool
	advertiseTags          string
	snat                   bool
	statefulFiltering      bool
	netfilterMode          string
	authKeyOrFile          string
	hostname               string
	opUser                 string
	postureChecking        bool
	json                   bool
	timeout                time.Duration
	profileName            string
}

// notFalseVar is --host-routes: it can only be true (as upstream).
type notFalseVar struct{}

func (notFalseVar) IsBoolFlag() bool { return true }
func (notFalseVar) Set(v string) error {
	if v != "true" {
		return fmt.Errorf("unsupported value; only 'true' is allowed")
	}
	return nil
}
func (notFalseVar) String() string { return "true" }

// newUpFlagSet returns the flags of "up" or "login" (tailscale's names
// and help texts).
func (c *cli) newUpFlagSet(cmd string, a *upArgs) *flag.FlagSet {
	f := newFlagSet(cmd, c.env.Stderr)
	f.BoolVar(&a.qr, "qr", false, "show QR code for login URLs")
	f.StringVar(&a.qrFormat, "qr-format", "small", "QR code formatting (small, large)")
	f.StringVar(&a.authKeyOrFile, "auth-key", "", `node authorization key; if it begins with "file:", then it's a path to a file containing the authkey`)
	f.StringVar(&a.authKeyOrFile, "authkey", "", "alias of --auth-key")
	f.StringVar(&a.server, "login-server", ipn.DefaultControlURL, "base URL of control server")
	f.BoolVar(&a.acceptRoutes, "accept-routes", false, "accept routes advertised by other weft nodes")
	f.BoolVar(&a.acceptDNS, "accept-dns", true, "accept DNS configuration from the admin panel")
	f.Var(notFalseVar{}, "host-routes", "install host routes to other weft nodes (must be true)")
	f.StringVar(&a.exitNodeIP, "exit-node", "", "exit node (IP or base name) for internet traffic, or empty string to not use an exit node")
	f.BoolVar(&a.exitNodeAllowLANAccess, "exit-node-allow-lan-access", false, "allow direct access to the local network when routing traffic via an exit node")
	f.BoolVar(&a.shieldsUp, "shields-up", false, "don't allow incoming connections")
	f.BoolVar(&a.runSSH, "ssh", false, "run an SSH server, permitting access per tailnet admin's declared policy")
	f.StringVar(&a.advertiseTags, "advertise-tags", "", `comma-separated ACL tags to request (e.g. "tag:eng,tag:montreal,tag:ssh"); the "tag:" prefix is optional`)
	f.StringVar(&a.hostname, "hostname", "", "hostname to use instead of the one provided by the OS")
	f.StringVar(&a.advertiseRoutes, "advertise-routes", "", `routes to advertise to other nodes (comma-separated, e.g. "10.0.0.0/8,192.168.0.0/24") or empty string to not advertise routes`)
	f.BoolVar(&a.advertiseDefaultRoute, "advertise-exit-node", false, "offer to be an exit node for internet traffic for the tailnet")
	f.BoolVar(&a.postureChecking, "report-posture", false, "allow management plane to gather device posture information")
	f.StringVar(&a.opUser, "operator", "", "Unix username to allow to operate on weftd without sudo")
	f.BoolVar(&a.snat, "snat-subnet-routes", true, "source NAT traffic to local routes advertised with --advertise-routes")
	f.BoolVar(&a.statefulFiltering, "stateful-filtering", false, "apply stateful filtering to forwarded packets (subnet routers, exit nodes, and so on)")
	f.StringVar(&a.netfilterMode, "netfilter-mode", "on", "netfilter mode (one of on, nodivert, off)")
	f.DurationVar(&a.timeout, "timeout", 0, "maximum amount of time to wait for weftd to enter a Running state; default (0s) blocks forever")
	if cmd == "login" {
		f.StringVar(&a.profileName, "nickname", "", "short name for the account")
	}
	if cmd == "up" {
		f.BoolVar(&a.json, "json", false, "output in JSON format (WARNING: format subject to change)")
		f.BoolVar(&a.reset, "reset", false, "reset unspecified settings to their default values")
		f.BoolVar(&a.forceReauth, "force-reauth", false, "force reauthentication (WARNING: this may bring down the weft connection and thus should not be done remotely over SSH)")
	}
	return f
}

// prefsFromUpArgs builds the preferences `up` asks for.
func prefsFromUpArgs(a *upArgs) (ipn.Prefs, error) {
	p := ipn.NewPrefs()
	p.ControlURL = strings.TrimRight(a.server, "/")
	if !strings.HasPrefix(p.ControlURL, "http://") && !strings.HasPrefix(p.ControlURL, "https://") {
		return p, fmt.Errorf("invalid --login-server %q: must start with http:// or https://", a.server)
	}
	p.RouteAll = a.acceptRoutes
	p.CorpDNS = a.acceptDNS
	p.ShieldsUp = a.shieldsUp
	p.RunSSH = a.runSSH
	p.Hostname = a.hostname
	p.OperatorUser = a.opUser
	p.NoSNAT = !a.snat
	p.NoStatefulFiltering = !a.statefulFiltering
	p.PostureChecking = a.postureChecking
	p.ExitNodeAllowLANAccess = a.exitNodeAllowLANAccess
	p.ProfileName = a.profileName
	p.WantRunning = true
	switch a.netfilterMode {
	case "on":
		p.NetfilterMode = ipn.NetfilterOn
	case "nodivert":
		p.NetfilterMode = ipn.NetfilterNoDivert
	case "off":
		p.NetfilterMode = ipn.NetfilterOff
	default:
		return p, fmt.Errorf("invalid value --netfilter-mode=%q", a.netfilterMode)
	}
	if a.exitNodeAllowLANAccess && a.exitNodeIP == "" {
		return p, errors.New("--exit-node-allow-lan-access can only be used with --exit-node")
	}
	if a.exitNodeIP != "" {
		ip, err := netip.ParseAddr(a.exitNodeIP)
		if err != nil {
			return p, fmt.Errorf("invalid value %q for --exit-node; must be an IP address (exit node names are resolved once weft runs: use the IP from weft status)", a.exitNodeIP)
		}
		p.ExitNodeIP = ip
	}
	if a.advertiseTags != "" {
		for _, t := range strings.Split(a.advertiseTags, ",") {
			t = strings.TrimSpace(t)
			if !strings.HasPrefix(t, "tag:") {
				t = "tag:" + t
			}
			if t == "tag:" || strings.ContainsAny(t[4:], " :,") {
				return p, fmt.Errorf("tag: %q: tags look like tag:name", t)
			}
			p.AdvertiseTags = append(p.AdvertiseTags, t)
		}
	}
	if a.advertiseRoutes != "" {
		for _, s := range strings.Split(a.advertiseRoutes, ",") {
			r, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return p, fmt.Errorf("%q is not a valid IP address or CIDR prefix", s)
			}
			if r != r.Masked() {
				return p, fmt.Errorf("%s has non-address bits set; expected %s", r, r.Masked())
			}
			if r.Bits() == 0 {
				return p, fmt.Errorf("%s advertises a default route; did you mean --advertise-exit-node?", r)
			}
			p.AdvertiseRoutes = append(p.AdvertiseRoutes, r)
		}
	}
	if a.advertiseDefaultRoute {
		p.AdvertiseRoutes = append(p.AdvertiseRoutes, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
	}
	slices.SortFunc(p.AdvertiseRoutes, func(x, y netip.Prefix) int { return strings.Compare(x.String(), y.String()) })
	return p, nil
}

// preflessFlag reports whether a flag is not a stored setting.
func preflessFlag(name string) bool {
	switch name {
	case "auth-key", "authkey", "force-reauth", "reset", "qr", "qr-format", "json", "timeout", "host-routes", "nickname":
		return true
	}
	return false
}

// prefsToFlags returns, per flag, the value that reproduces p.
func prefsToFlags(p ipn.Prefs) map[string]any {
	routes, exit := []string{}, false
	v4, v6 := false, false
	for _, r := range p.AdvertiseRoutes {
		switch r.String() {
		case "0.0.0.0/0":
			v4 = true
		case "::/0":
			v6 = true
		default:
			routes = append(routes, r.String())
		}
	}
	exit = v4 && v6
	exitNode := ""
	if p.ExitNodeIP.IsValid() {
		exitNode = p.ExitNodeIP.String()
	}
	return map[string]any{
		"login-server":               p.ControlURL,
		"accept-routes":              p.RouteAll,
		"accept-dns":                 p.CorpDNS,
		"exit-node":                  exitNode,
		"exit-node-allow-lan-access": p.ExitNodeAllowLANAccess,
		"shields-up":                 p.ShieldsUp,
		"ssh":                        p.RunSSH,
		"advertise-tags":             strings.Join(p.AdvertiseTags, ","),
		"hostname":                   p.Hostname,
		"advertise-routes":           strings.Join(routes, ","),
		"advertise-exit-node":        exit,
		"report-posture":             p.PostureChecking,
		"operator":                   p.OperatorUser,
		"snat-subnet-routes":         !p.NoSNAT,
		"stateful-filtering":         !p.NoStatefulFiltering,
		"netfilter-mode":             p.NetfilterMode.String(),
	}
}

const accidentalUpPrefix = "Error: changing settings via 'weft up' requires mentioning all\n" +
	"non-default flags. To proceed, either re-run your command with --reset or\n" +
	"use the command below to explicitly mention the current value of\n" +
	"all non-default settings:\n\n" +
	"\tweft up"

// checkForAccidentalSettingReverts is tailscale's "up checker": a second
// `up` must restate every non-default setting, or pass --reset.
func checkForAccidentalSettingReverts(fs *flag.FlagSet, newPrefs, curPrefs ipn.Prefs) error {
	if curPrefs.ControlURL == "" {
		return nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cur, nw := prefsToFlags(curPrefs), prefsToFlags(newPrefs)
	var missing []string
	for name, vc := range cur {
		if set[name] || reflect.DeepEqual(vc, nw[name]) {
			continue
		}
		missing = append(missing, fmtFlagValueArg(name, vc))
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	var explicit []string
	fs.Visit(func(f *flag.Flag) {
		if preflessFlag(f.Name) && f.Name != "auth-key" && f.Name != "authkey" {
			return
		}
		if f.Name == "auth-key" || f.Name == "authkey" {
			return // never echo a secret
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			if f.Value.String() == "false" {
				explicit = append(explicit, "--"+f.Name+"=false")
			} else {
				explicit = append(explicit, "--"+f.Name)
			}
			return
		}
		explicit = append(explicit, fmtFlagValueArg(f.Name, f.Value.String()))
	})
	var sb strings.Builder
	sb.WriteString(accidentalUpPrefix)
	for _, a := range append(explicit, missing...) {
		fmt.Fprintf(&sb, " %s", a)
	}
	sb.WriteString("\n\n")
	return errors.New(sb.String())
}

func fmtFlagValueArg(name string, v any) string {
	if b, ok := v.(bool); ok {
		if b {
			return "--" + name
		}
		return "--" + name + "=false"
	}
	return "--" + name + "=" + shellQuote(fmt.Sprint(v))
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	if strings.ContainsAny(s, " \t\n'\"\\$`!*?[]{}()<>|&;#~") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
