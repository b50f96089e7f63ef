// Command control-scale measures weft-control under N simulated nodes that
// speak real ts2021 over loopback: each has its own machine and node key,
// registers with a reusable auth key, then holds a zstd streaming map poll
// as official clients do. It prints time to register all nodes, server RSS
// and CPU, and p50/p99 latency from one node's endpoint change (and from a
// new node's registration) until every peer has the delta.
//
// It is a benchmark, not a test. Run from the repository root:
//
//	go run ./bench/control-scale -n 1000,5000
//
// With -headscale-url (and -headscale-key, -headscale-pid) it runs the same
// load against a headscale you started yourself, for a same-run ratio.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	ns := flag.String("n", "1000,5000", "comma-separated node counts")
	conc := flag.Int("concurrency", 32, "registrations in flight at a time")
	trials := flag.Int("trials", 20, "endpoint-change and new-node trials")
	hsURL := flag.String("headscale-url", "", "also measure a running headscale at this URL")
	hsKey := flag.String("headscale-key", "", "reusable pre-auth key for -headscale-url")
	hsPID := flag.Int("headscale-pid", 0, "headscale's PID, for RSS and CPU")
	onlyExternal := flag.Bool("only-external", false, "skip the built-in weft-control run (profile an external server)")
	flag.DurationVar(&holdFor, "hold", 0, "keep the nodes connected this long after measuring (for profiling)")
	flag.Parse()

	bin, err := buildControl()
	if err != nil {
		fatal(err)
	}
	for _, s := range strings.Split(*ns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 {
			fatal(fmt.Errorf("-n %q: want counts ≥ 2", s))
		}
		var w *result
		if !*onlyExternal {
			if w, err = runWeft(bin, n, *conc, *trials); err != nil {
				fatal(fmt.Errorf("weft-control N=%d: %w", n, err))
			}
			w.print("weft-control", n)
		}
		if *hsURL != "" {
			h, err := runLoad(context.Background(), target{url: *hsURL, key: *hsKey, pid: *hsPID}, n, *conc, *trials)
			if err != nil {
				fmt.Printf("headscale N=%d: %v\n", n, err)
				continue
			}
			h.print("external", n)
			if w != nil {
				printRatios(w, h)
			}
		}
	}
}

// holdFor is the -hold flag.
var holdFor time.Duration

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "control-scale:", err)
	os.Exit(1)
}

func buildControl() (string, error) {
	dir, err := os.MkdirTemp("", "weft-bench-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "weft-control")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/weft-control")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build weft-control (run from the repository root): %w", err)
	}
	return bin, nil
}

// runWeft starts a fresh weft-control with an SQLite store and runs the load.
func runWeft(bin string, n, conc, trials int) (*result, error) {
	dir, err := os.MkdirTemp("", "weft-bench-state-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	derp := filepath.Join(dir, "derp.json")
	os.WriteFile(derp, []byte(`{"Regions":{"900":{"RegionID":900,"RegionCode":"b","RegionName":"bench","Nodes":[{"Name":"900a","RegionID":900,"HostName":"127.0.0.1","IPv4":"127.0.0.1","DERPPort":1,"InsecureForTests":true}]}}}`), 0o644)
	state := filepath.Join(dir, "state")
	srv := exec.Command(bin, "--listen", "127.0.0.1:"+strconv.Itoa(port), "--server-url", url,
		"--state-dir", state, "--derp-map", derp, "--log-level", envOr("BENCH_SERVER_LOG", "warn"), "--stun-listen", "none")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return nil, err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	ctx := context.Background()
	if err := waitHTTP(ctx, url+"/health", 10*time.Second); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "--state-dir", state, "users", "create", "bench").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("users create: %v: %s", err, out)
	}
	out, err := exec.Command(bin, "--state-dir", state, "keys", "create", "--user", "bench", "--reusable", "--expiry", "24h").Output()
	if err != nil {
		return nil, fmt.Errorf("keys create: %w", err)
	}
	return runLoad(ctx, target{url: url, key: strings.TrimSpace(string(out)), pid: srv.Process.Pid}, n, conc, trials)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
