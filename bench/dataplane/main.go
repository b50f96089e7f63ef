package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"weft.dev/weft/internal/nettest"
	"weft.dev/weft/interop"
)

func main() {
	var (
		controlBin = flag.String("weft-control", "", "weft-control binary (default: go build ./cmd/weft-control)")
		weftdBin   = flag.String("weftd", "", "weftd binary (default: go build ./cmd/weftd)")
		weftBin    = flag.String("weft", "", "weft binary (default: go build ./cmd/weft)")
		duration   = flag.Duration("t", 8*time.Second, "iperf3 duration per run")
		profile    = flag.String("profile", "", "save a CPU profile of the sending weftd under iperf3 (4 streams) to this file and print its top functions")
		profileRx  = flag.String("profile-recv", "", "same as -profile for the receiving weftd")
		weftdBase  = flag.String("weftd-base", "", "also measure a pair of this weftd binary (before a change) and print weftd/base ratios")
		rounds     = flag.Int("rounds", 1, "alternate the pairs this many times and print each round's ratios and their medians")
		userspace  = flag.Bool("userspace", false, "instead: both implementations in userspace-networking mode, curl through SOCKS5 to the peer's local HTTP server")
	)
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "dataplane: needs root (network namespaces, TUN devices); run it with sudo")
		os.Exit(1)
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		fmt.Fprintln(os.Stderr, "dataplane: iperf3 is missing; install it (.ci/deps.sh does: apt-get install iperf3)")
		os.Exit(1)
	}
	o := options{controlBin: *controlBin, weftdBin: *weftdBin, weftBin: *weftBin, iperfTime: *duration, profile: *profile, profileRx: *profileRx, weftdBase: *weftdBase, rounds: max(*rounds, 1), userspace: *userspace}
	err := guard(&benchTB{}, func(tb *benchTB) error { return run(tb, o) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "dataplane:", err)
		os.Exit(1)
	}
}

type options struct {
	controlBin, weftdBin, weftBin string
	weftdBase                     string
	iperfTime                     time.Duration
	profile, profileRx            string
	rounds                        int
	userspace                     bool
}

// build fills in the binaries that were not given with `go build`.
func (o *options) build(tb *benchTB) error {
	dir := tb.TempDir()
	for _, b := range []struct {
		path *string
		name string
	}{{&o.controlBin, "weft-control"}, {&o.weftdBin, "weftd"}, {&o.weftBin, "weft"}} {
		if *b.path != "" {
			continue
		}
		*b.path = filepath.Join(dir, b.name)
		out, err := exec.Command("go", "build", "-o", *b.path, "weft.dev/weft/cmd/"+b.name).CombinedOutput()
		if err != nil {
			return fmt.Errorf("build %s: %v\n%s", b.name, err, out)
		}
	}
	return nil
}

func run(tb *benchTB, o options) error {
	if err := o.build(tb); err != nil {
		return err
	}
	lab := interop.NewLab(tb, interop.LabConfig{Nodes: 0, NoDaemons: true, NoDerper: true})
	ctl, err := startControl(tb, lab, o.controlBin)
	if err != nil {
		return err
	}
	if o.userspace {
		if err := runUserspace(tb, lab, ctl, o); err != nil {
			return err
		}
		return o.printProfiles()
	}
	fmt.Printf("rig: %s, official tailscaled %s, iperf3 %v per run, TUN mode, direct path on one bridge, %d round(s)\n",
		cpuSummary(), interop.TailscaleVersion, o.iperfTime, o.rounds)

	// Rounds alternate the official pair (the baseline) and weft on fresh
	// nodes; each pair is stopped before the next starts so they do not
	// compete for the CPUs, and each round's ratios compare neighbours in
	// time (the machine is shared: only such ratios mean anything).
	var official, weft, base []*results
	for round := 1; round <= o.rounds; round++ {
		if o.rounds > 1 {
			fmt.Printf("\nround %d:\n", round)
		}
		ro, err := measureOfficial(tb, lab, ctl, o, fmt.Sprintf("ts%d-", round))
		if err != nil {
			return err
		}
		ro.print("tailscaled")
		official = append(official, ro)
		if o.weftdBase != "" {
			rb, err := measureWeftd(tb, lab, ctl, o, o.weftdBase, fmt.Sprintf("wbase%d-", round), "", "")
			if err != nil {
				return err
			}
			rb.print("weftd-base")
			base = append(base, rb)
		}
		profile, profileRx := "", ""
		if round == o.rounds {
			profile, profileRx = o.profile, o.profileRx
		}
		rw, err := measureWeftd(tb, lab, ctl, o, o.weftdBin, fmt.Sprintf("weft%d-", round), profile, profileRx)
		if err != nil {
			return err
		}
		rw.print("weftd")
		weft = append(weft, rw)
		printRatios("weftd/tailscaled", rw, ro)
		if o.weftdBase != "" {
			printRatios("weftd/weftd-base", rw, base[len(base)-1])
		}
	}
	if o.rounds > 1 {
		fmt.Printf("\nmedians of %d rounds:\n", o.rounds)
		printMedianRatios("weftd/tailscaled", weft, official)
		if o.weftdBase != "" {
			printMedianRatios("weftd/weftd-base", weft, base)
		}
	}
	return o.printProfiles()
}

// printProfiles prints the top functions of the profiles the run saved.
func (o options) printProfiles() error {
	for _, p := range []struct{ file, side string }{{o.profile, "sender"}, {o.profileRx, "receiver"}} {
		if p.file == "" {
			continue
		}
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=35", o.weftdBin, p.file).CombinedOutput()
		fmt.Printf("\nweftd CPU profile (%s side), %s:\n%s", p.side, p.file, out)
		if err != nil {
			return fmt.Errorf("pprof: %w", err)
		}
	}
	return nil
}

// measureOfficial measures a pair of official tailscaled on new nodes
// named prefix1 and prefix2.
func measureOfficial(tb *benchTB, lab *interop.Lab, ctl *control, o options, prefix string) (*results, error) {
	p := &pair{name: "tailscaled"}
	for i := range 2 {
		d := lab.AddTailscaled(lab.NewNode(fmt.Sprintf("%s%d", prefix, i+1), lab.Net))
		p.side[i] = side{node: d.Node, proc: d.Proc, cli: d.Tailscale, status: d.StatusJSON,
			up: func() error { return d.Up(ctl.url, ctl.key) }}
	}
	r, err := p.measure(o, "", "")
	p.stop()
	if err != nil {
		return nil, fmt.Errorf("tailscaled pair: %w", err)
	}
	return r, nil
}

// measureWeftd measures a pair of weftd binary bin on new nodes named
// prefix1 and prefix2.
func measureWeftd(tb *benchTB, lab *interop.Lab, ctl *control, o options, bin, prefix, profile, profileRx string) (*results, error) {
	p := &pair{name: "weftd"}
	for i := range 2 {
		n := lab.NewNode(fmt.Sprintf("%s%d", prefix, i+1), lab.Net)
		cfg := interop.WeftdConfig{Weftd: bin, Weft: o.weftBin, CAFile: lab.TLS.CAFile, Debug: "127.0.0.1:6060"}
		if os.Getenv("DATAPLANE_SLOW_LOGS") != "" {
			cfg.Args = []string{"--verbose=2"}
		}
		d := interop.StartWeftd(tb, n, cfg)
		p.side[i] = side{node: n, proc: d.Proc, cli: d.Weft, status: d.StatusJSON,
			up: func() error { return d.Up(ctl.url, ctl.key) }}
	}
	r, err := p.measure(o, profile, profileRx)
	p.stop()
	if err != nil {
		return nil, fmt.Errorf("%s pair: %w", bin, err)
	}
	return r, nil
}

// control is a weft-control with TLS on the lab's control node, its
// embedded DERP relay and STUN, and a reusable key.
type control struct {
	url, key string
}

func startControl(tb *benchTB, lab *interop.Lab, bin string) (*control, error) {
	stateDir := filepath.Join(lab.Dir(), "weft-control")
	url := "https://" + lab.Control.Addr.String()
	p := lab.Control.Start(nettest.Cmd{Name: "weft-control", Args: []string{bin,
		"--listen", lab.Control.Addr.String() + ":443", "--server-url", url, "--state-dir", stateDir,
		"--tls-cert", lab.TLS.CertFile, "--tls-key", lab.TLS.KeyFile, "--base-domain", "weft.test",
	}})
	admin := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, append([]string{"--state-dir", stateDir}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("weft-control %s: %v\n%s\n%s", strings.Join(args, " "), err, out, p.Tail(20))
		}
		return strings.TrimSpace(string(out)), nil
	}
	if err := nettest.Poll(15*time.Second, func() error { _, err := admin("users", "list"); return err }); err != nil {
		return nil, err
	}
	if _, err := admin("users", "create", "bench"); err != nil {
		return nil, err
	}
	key, err := admin("keys", "create", "--user", "bench", "--reusable", "--expiry", "2h")
	if err != nil {
		return nil, err
	}
	return &control{url: url, key: key}, nil
}

func cpuSummary() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	model, n := "", 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			model = strings.TrimSpace(v)
			n++
		}
	}
	return fmt.Sprintf("%d x %s", n, model)
}

// upBoth runs both sides' `up` concurrently.
func upBoth(p *pair) error {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range p.side {
		wg.Go(func() { errs[i] = p.side[i].up() })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("%s side %d: up: %w", p.name, i+1, err)
		}
	}
	return nil
}
