package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"weft.dev/weft/internal/nettest"
	"weft.dev/weft/interop"
)

// userspaceBytes is what one userspace-mode transfer moves.
const userspaceBytes = 1 << 30

// usResults are one pair's userspace-mode figures.
type usResults struct {
	bps   float64 // HTTP body bits/s through SOCKS5 and both netstacks
	cpuGB float64 // both daemons' CPU seconds per GB
}

// runUserspace is -userspace: both implementations in
// --tun=userspace-networking, a curl in node 1 fetching 512 MiB through
// node 1's SOCKS5 proxy from an HTTP server on node 2's loopback, reached
// at node 2's tailnet address (each daemon forwards inbound tailnet
// connections to local services). Rounds alternate the pairs.
func runUserspace(tb *benchTB, lab *interop.Lab, ctl *control, o options) error {
	fmt.Printf("rig: %s, official tailscaled %s, userspace-networking, curl via SOCKS5 of %d MiB from the peer's local HTTP server, direct path, %d round(s)\n",
		cpuSummary(), interop.TailscaleVersion, userspaceBytes>>20, o.rounds)
	var ratios []float64
	for round := 1; round <= o.rounds; round++ {
		var res [2]*usResults
		for i, impl := range []string{"tailscaled", "weftd"} {
			p := userspacePair(tb, lab, ctl, o, impl, fmt.Sprintf("us%s%d-", impl[:2], round))
			profile, profileRx := "", ""
			if impl == "weftd" && round == o.rounds {
				profile, profileRx = o.profile, o.profileRx
			}
			r, err := p.measureUserspace(profile, profileRx)
			p.stop()
			if err != nil {
				return fmt.Errorf("%s userspace pair: %w", impl, err)
			}
			res[i] = r
		}
		ratio := res[1].bps / res[0].bps
		ratios = append(ratios, ratio)
		fmt.Printf("round %d: tailscaled %5.0f Mbit/s (%.1f CPU-s/GB) | weftd %5.0f Mbit/s (%.1f CPU-s/GB) | weftd/tailscaled %.2fx throughput, %.2fx CPU/GB\n",
			round, res[0].bps/1e6, res[0].cpuGB, res[1].bps/1e6, res[1].cpuGB, ratio, res[1].cpuGB/res[0].cpuGB)
	}
	if o.rounds > 1 {
		fmt.Printf("median weftd/tailscaled throughput over %d rounds: %.2fx\n", o.rounds, median(ratios))
	}
	return nil
}

// userspacePair starts two daemons of impl in userspace mode, each with a
// SOCKS5 proxy on 127.0.0.1:1080 in its node.
func userspacePair(tb *benchTB, lab *interop.Lab, ctl *control, o options, impl, prefix string) *pair {
	p := &pair{name: impl}
	for i := range 2 {
		n := lab.NewNode(fmt.Sprintf("%s%d", prefix, i+1), lab.Net)
		if impl == "tailscaled" {
			d := interop.StartTailscaled(tb, n, lab.Bins, interop.TailscaledConfig{
				Tun: interop.Userspace, CAFile: lab.TLS.CAFile, Args: []string{"--socks5-server=127.0.0.1:1080"}})
			p.side[i] = side{node: n, proc: d.Proc, cli: d.Tailscale, status: d.StatusJSON,
				up: func() error { return d.Up(ctl.url, ctl.key) }}
			continue
		}
		d := interop.StartWeftd(tb, n, interop.WeftdConfig{Weftd: o.weftdBin, Weft: o.weftBin, CAFile: lab.TLS.CAFile,
			Tun: interop.Userspace, Socks5: "127.0.0.1:1080", Debug: "127.0.0.1:6060"})
		p.side[i] = side{node: n, proc: d.Proc, cli: d.Weft, status: d.StatusJSON,
			up: func() error { return d.Up(ctl.url, ctl.key) }}
	}
	return p
}

// measureUserspace moves userspaceBytes from node 2 to node 1; profile
// and profileRx, when set, get CPU profiles of the sending (node 2) and
// receiving daemon during the transfer.
func (p *pair) measureUserspace(profile, profileRx string) (*usResults, error) {
	a, b := p.side[0], p.side[1]
	if err := upBoth(p); err != nil {
		return nil, err
	}
	var bIP netip.Addr
	if err := nettest.Poll(30*time.Second, func() (err error) { bIP, err = b.ipv4(); return err }); err != nil {
		return nil, err
	}
	if err := nettest.Poll(60*time.Second, func() error {
		a.cli("ping", "-c", "2", bIP.String())
		ca, err := a.curAddr(bIP)
		if err == nil && ca == "" {
			err = fmt.Errorf("not direct yet")
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("direct path: %w", err)
	}
	ln, err := b.node.Listen("tcp", "127.0.0.1:8000")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(serveZeros), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	url := "http://" + net.JoinHostPort(bIP.String(), "8000") + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	var profs []chan error
	for _, pf := range []struct {
		s    side
		file string
	}{{b, profile}, {a, profileRx}} {
		if pf.file != "" {
			ch := make(chan error, 1)
			go func() { ch <- saveProfile(pf.s.node, pf.file, 2*time.Second) }()
			profs = append(profs, ch)
		}
	}
	cpu0 := cpuSeconds(a.proc.Pid()) + cpuSeconds(b.proc.Pid())
	out, err := a.node.ExecContext(ctx, "curl", "-sS", "-o", "/dev/null", "--socks5", "127.0.0.1:1080",
		"-w", "%{size_download} %{time_total}", url)
	cpu := cpuSeconds(a.proc.Pid()) + cpuSeconds(b.proc.Pid()) - cpu0
	for _, ch := range profs {
		if perr := <-ch; perr != nil {
			fmt.Fprintln(os.Stderr, "profile:", perr)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("curl via SOCKS5: %v\n%s", err, out)
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return nil, fmt.Errorf("curl output %q", out)
	}
	size, _ := strconv.ParseFloat(f[0], 64)
	secs, _ := strconv.ParseFloat(f[1], 64)
	if size != userspaceBytes || secs <= 0 {
		return nil, fmt.Errorf("curl fetched %v bytes in %v s, want %d", size, secs, userspaceBytes)
	}
	return &usResults{bps: size * 8 / secs, cpuGB: cpu / (size / 1e9)}, nil
}

// serveZeros answers with userspaceBytes of zeros.
func serveZeros(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", strconv.Itoa(userspaceBytes))
	buf := make([]byte, 1<<20)
	for n := 0; n < userspaceBytes; n += len(buf) {
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
	io.Copy(io.Discard, r.Body)
}
