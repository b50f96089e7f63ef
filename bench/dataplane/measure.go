package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"weft.dev/weft/internal/nettest"
	"weft.dev/weft/interop"
)

// side is one daemon of a pair, driven through its CLI.
type side struct {
	node   *nettest.Node
	proc   *nettest.Proc
	cli    func(args ...string) (string, error)
	status func() (*interop.Status, error)
	up     func() error
}

// pair is two daemons of one implementation.
type pair struct {
	name string
	side [2]side
}

// results are one pair's figures.
type results struct {
	upToPong      time.Duration
	rttAvg        time.Duration
	tput1, tput4  float64 // bits/s received
	retr1, retr4  int     // inner TCP retransmits iperf3 counted
	cpu1, cpu4    float64 // sender+receiver daemon CPU seconds per GB received
	failover      time.Duration
	backDirect    time.Duration
	rssIdle, rssL int64 // sender daemon KiB
}

func (p *pair) stop() {
	for _, s := range p.side {
		if s.proc != nil {
			s.proc.Stop()
		}
	}
}

func (s side) ipv4() (netip.Addr, error) {
	st, err := s.status()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range st.TailscaleIPs {
		if a.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no tailnet IPv4 yet (state %s)", st.BackendState)
}

// curAddr is s's CurAddr for the peer with tailnet address peer. The
// lab's control also lists the pairs measured before (offline), so the
// peer must be picked by address, not as "the only one".
func (s side) curAddr(peer netip.Addr) (string, error) {
	st, err := s.status()
	if err != nil {
		return "", err
	}
	for _, p := range st.Peer {
		for _, a := range p.TailscaleIPs {
			if a == peer {
				return p.CurAddr, nil
			}
		}
	}
	return "", fmt.Errorf("no peer with address %v", peer)
}

// measure runs every figure for p; profile and profileRx, when set, are
// files for CPU profiles of the sending and receiving daemon under
// iperf3 -P 4.
func (p *pair) measure(o options, profile, profileRx string) (*results, error) {
	r := &results{}
	a, b := p.side[0], p.side[1]
	start := time.Now()
	if err := upBoth(p); err != nil {
		return nil, err
	}
	var bIP netip.Addr
	if err := nettest.Poll(30*time.Second, func() (err error) { bIP, err = b.ipv4(); return err }); err != nil {
		return nil, err
	}
	if err := nettest.Poll(60*time.Second, func() error { return a.node.Ping(bIP) }); err != nil {
		return nil, fmt.Errorf("first pong: %w", err)
	}
	r.upToPong = time.Since(start)
	if r.upToPong > time.Second && os.Getenv("DATAPLANE_SLOW_LOGS") != "" {
		for _, s := range p.side {
			fmt.Printf("--- %s %s log (first pong after %v):\n%s\n", p.name, s.node.Name, r.upToPong, s.proc.Tail(60))
		}
	}
	if err := nettest.Poll(60*time.Second, func() error {
		a.node.Ping(bIP)
		ca, err := a.curAddr(bIP)
		if err == nil && ca == "" {
			err = errors.New("not direct yet")
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("direct path: %w", err)
	}
	time.Sleep(3 * time.Second)
	r.rssIdle = rssKiB(a.proc.Pid())

	out, err := a.node.Exec("ping", "-c", "50", "-i", "0.02", "-q", bIP.String())
	if err != nil {
		return nil, fmt.Errorf("ping: %v\n%s", err, out)
	}
	r.rttAvg = parseRTT(out)

	srv := b.node.Start(nettest.Cmd{Name: "iperf3-server", Args: []string{"iperf3", "-s", "-B", bIP.String()}})
	defer srv.Stop()
	time.Sleep(300 * time.Millisecond)
	for _, streams := range []int{1, 4} {
		var profs []chan error
		for _, pf := range []struct {
			s    side
			file string
		}{{a, profile}, {b, profileRx}} {
			if pf.file != "" && streams == 4 {
				ch := make(chan error, 1)
				go func() { ch <- saveProfile(pf.s.node, pf.file, o.iperfTime-2*time.Second) }()
				profs = append(profs, ch)
			}
		}
		cpu0 := cpuSeconds(a.proc.Pid()) + cpuSeconds(b.proc.Pid())
		bps, retr, err := iperf(a.node, bIP, streams, o.iperfTime)
		cpu := cpuSeconds(a.proc.Pid()) + cpuSeconds(b.proc.Pid()) - cpu0
		if err != nil {
			return nil, err
		}
		gb := bps * o.iperfTime.Seconds() / 8 / 1e9
		if streams == 1 {
			r.tput1, r.cpu1, r.retr1 = bps, cpu/gb, retr
		} else {
			r.tput4, r.cpu4, r.retr4 = bps, cpu/gb, retr
		}
		for _, ch := range profs {
			if err := <-ch; err != nil {
				fmt.Fprintln(os.Stderr, "profile:", err)
			}
		}
	}
	r.rssL = rssKiB(a.proc.Pid())
	if p := os.Getenv("DATAPLANE_HEAP"); p != "" && profile != "" {
		// A heap profile of the sending weftd after load (debug aid).
		for i, s := range []side{a, b} {
			if err := saveURL(s.node, fmt.Sprintf("%s.%d", p, i+1), "http://127.0.0.1:6060/debug/pprof/heap", 10*time.Second); err != nil {
				fmt.Fprintln(os.Stderr, "heap profile:", err)
			}
		}
	}

	// Failover: block UDP both ways, time until the tunnel carries ICMP
	// again over DERP; then unblock and time the return to direct.
	t0 := time.Now()
	a.node.BlockUDP(b.node.Addr)
	b.node.BlockUDP(a.node.Addr)
	if err := nettest.Poll(60*time.Second, func() error {
		if ca, err := a.curAddr(bIP); err != nil || ca != "" {
			return fmt.Errorf("still direct %q %v", ca, err)
		}
		return a.node.Ping(bIP)
	}); err != nil {
		return nil, fmt.Errorf("failover: %w", err)
	}
	r.failover = time.Since(t0)
	t0 = time.Now()
	a.node.UnblockUDP(b.node.Addr)
	b.node.UnblockUDP(a.node.Addr)
	if err := nettest.Poll(60*time.Second, func() error {
		a.node.Ping(bIP)
		if ca, err := a.curAddr(bIP); err != nil || ca == "" {
			return fmt.Errorf("not direct %v", err)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("back to direct: %w", err)
	}
	r.backDirect = time.Since(t0)
	return r, nil
}

var rttRE = regexp.MustCompile(`= [\d.]+/([\d.]+)/`)

func parseRTT(out string) time.Duration {
	m := rttRE.FindStringSubmatch(out)
	if m == nil {
		return 0
	}
	ms, _ := strconv.ParseFloat(m[1], 64)
	return time.Duration(ms * float64(time.Millisecond))
}

// iperf runs an iperf3 TCP client in node against dst and returns the
// received bits per second and the sender's retransmits.
func iperf(node *nettest.Node, dst netip.Addr, streams int, d time.Duration) (float64, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	out, err := node.ExecContext(ctx, "iperf3", "-c", dst.String(), "-J", "-P", strconv.Itoa(streams), "-t", strconv.Itoa(int(d.Seconds())))
	if err != nil {
		return 0, 0, fmt.Errorf("iperf3 -P %d: %v\n%s", streams, err, out)
	}
	var rep struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep); err != nil {
		return 0, 0, fmt.Errorf("iperf3 output: %w\n%s", err, out)
	}
	return rep.End.SumReceived.BitsPerSecond, rep.End.SumSent.Retransmits, nil
}

// saveProfile fetches a CPU profile of d from weftd's --debug listener
// inside node.
func saveProfile(node *nettest.Node, path string, d time.Duration) error {
	time.Sleep(time.Second) // let iperf3 ramp up
	return saveURL(node, path, fmt.Sprintf("http://127.0.0.1:6060/debug/pprof/profile?seconds=%d", int(d.Seconds())), d)
}

// saveURL GETs url from inside node into path.
func saveURL(node *nettest.Node, path, url string, d time.Duration) error {
	c := node.HTTPClient()
	c.Timeout = d + 20*time.Second
	res, err := c.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// rssKiB is VmRSS of pid.
func rssKiB(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// cpuSeconds is utime+stime of pid (USER_HZ is 100 on Linux).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

func (r *results) print(name string) {
	fmt.Printf("%-10s up→first pong %7v | ICMP RTT avg %8v | iperf3 TCP 1 stream %7.0f Mbit/s (%.1f CPU-s/GB, %d retr) | 4 streams %7.0f Mbit/s (%.1f CPU-s/GB, %d retr) | direct→DERP %6v, back %6v | RSS idle %d MiB, after load %d MiB\n",
		name, r.upToPong.Round(time.Millisecond), r.rttAvg.Round(time.Microsecond), r.tput1/1e6, r.cpu1, r.retr1, r.tput4/1e6, r.cpu4, r.retr4,
		r.failover.Round(100*time.Millisecond), r.backDirect.Round(100*time.Millisecond), r.rssIdle/1024, r.rssL/1024)
}

// metrics are the figures printRatios compares, in print order.
var metrics = []struct {
	name string
	get  func(*results) float64
}{
	{"up→pong", func(r *results) float64 { return r.upToPong.Seconds() }},
	{"RTT", func(r *results) float64 { return r.rttAvg.Seconds() }},
	{"TCP 1 stream", func(r *results) float64 { return r.tput1 }},
	{"4 streams", func(r *results) float64 { return r.tput4 }},
	{"CPU/GB 1 stream", func(r *results) float64 { return r.cpu1 }},
	{"CPU/GB 4 streams", func(r *results) float64 { return r.cpu4 }},
	{"direct→DERP", func(r *results) float64 { return r.failover.Seconds() }},
	{"back to direct", func(r *results) float64 { return r.backDirect.Seconds() }},
	{"RSS idle", func(r *results) float64 { return float64(r.rssIdle) }},
	{"after load", func(r *results) float64 { return float64(r.rssL) }},
}

// printRatios prints w/o for each figure (> 1 means w is higher: better
// for throughput, worse for times, RTT, CPU and memory).
func printRatios(name string, w, o *results) {
	printMedianRatios(name, []*results{w}, []*results{o})
}

// printMedianRatios prints, per figure, the median over rounds of
// w[i]/o[i] (ratios within a round, never across rounds).
func printMedianRatios(name string, w, o []*results) {
	var parts []string
	for _, m := range metrics {
		var rs []float64
		for i := range min(len(w), len(o)) {
			if b := m.get(o[i]); b != 0 {
				rs = append(rs, m.get(w[i])/b)
			}
		}
		v := "n/a"
		if len(rs) > 0 {
			slices.Sort(rs)
			v = fmt.Sprintf("%.2fx", median(rs))
			if len(rs) > 1 {
				v += fmt.Sprintf(" (%.2f–%.2f)", rs[0], rs[len(rs)-1])
			}
		}
		parts = append(parts, m.name+" "+v)
	}
	fmt.Printf("ratio %s: %s\n", name, strings.Join(parts, ", "))
}

// median of rs (sorted in place).
func median(rs []float64) float64 {
	slices.Sort(rs)
	med := rs[len(rs)/2]
	if len(rs)%2 == 0 {
		med = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	return med
}
