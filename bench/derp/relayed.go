package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"weft.dev/weft/internal/nettest"
	"weft.dev/weft/interop"
)

// relayedResult is one iperf3 run between two official tailscaled whose
// only path is the relay.
type relayedResult struct {
	gbps        float64 // receiver goodput, Gbit/s
	retransmits int     // sender TCP retransmits (inner flow)
	queueDrops  float64 // relay drops on full destination queues; -1 unknown
	relayCPU    time.Duration
	clientCPU   time.Duration // both tailscaled
	// clientDrops counts packets the sending tailscaled dropped because
	// its DERP write queue was full (magicsock_send_derp_dropped and
	// _error_queue): loss the relay causes by reading slowly.
	clientDrops float64
	meanRTT     time.Duration // inner TCP's smoothed RTT, iperf3 sender mean
	bpWaits     float64       // weft-derp: senders that waited for room; -1 n/a
	relayIO     procIO        // the relay's syscalls during the run
	relayCS     float64       // the relay's context switches (all threads)
	// idleRTT is ICMP ping through the tunnel (hence the relay) before the
	// iperf3 run: sparse-traffic latency, average and minimum.
	idleRTT, idleRTTMin time.Duration
	// tunSegs is the average number of MTU-sized packets per packet the
	// sender's kernel handed to its TUN device (TSO/GSO bursts): bursts
	// above the sending tailscaled's 32-packet DERP queue lose their excess.
	tunSegs float64
	// machineBusy is the CPU time all processes used during the run; what
	// the relay and tailscaled did not use went to iperf3, softirq threads
	// and anything else running on the machine (noise).
	machineBusy time.Duration
}

// relayedRig is what every relayed run needs, built once.
type relayedRig struct {
	ts          interop.TSBins
	weftControl string
	duration    time.Duration
	// profile, if set, receives a CPU profile of weft-derp during the run.
	profile string
}

// contender is one relay of the relayed scenario.
type contender struct {
	label   string // "derper", "weft-derp", "weft-derp-base"
	kind    interop.RelayKind
	bin     string
	profile bool     // -cpuprofile applies to it
	env     []string // extra environment
}

// runRelayed builds a lab (official tailscaled ×2 in TUN mode with UDP
// between them blocked, weft-control as control server, relay c as the
// only DERP region) and runs iperf3 TCP single stream from ts1 to ts2
// through it.
func runRelayed(tb testing.TB, rig relayedRig, c contender) relayedResult {
	kind := c.kind
	lab := interop.NewLab(tb, interop.LabConfig{Nodes: 2, NoDerper: true, Tailscaled: interop.TailscaledConfig{DERPOverHTTP: true}})
	a, b := lab.Nodes[0], lab.Nodes[1]
	a.Node.BlockUDP(b.Node.Addr)
	b.Node.BlockUDP(a.Node.Addr)
	relayNode := lab.NewNode("relay", lab.Net)
	cfg := interop.RelayConfig{Bin: c.bin, Env: c.env}
	if kind == interop.OfficialDERP {
		// derper serves /debug/varz (its drop counters) to this address only.
		cfg.Env = []string{"TS_ALLOW_DEBUG_IP=" + relayNode.Addr.String()}
	}
	profiling := rig.profile != "" && c.profile
	if profiling {
		cfg.Args = []string{"-debug-listen", "127.0.0.1:6060"}
	}
	relay := interop.StartRelay(tb, relayNode, kind, cfg)
	mapFile := filepath.Join(lab.Dir(), "derpmap.json")
	if err := interop.RegionMap(910, "bench", string(kind), relayNode.Addr).WriteFile(mapFile); err != nil {
		tb.Fatal(err)
	}
	url := startControl(tb, lab, rig.weftControl, mapFile)
	stateDir := filepath.Join(lab.Dir(), "weft-control")
	admin := func(args ...string) string {
		out, err := exec.Command(rig.weftControl, append([]string{"--state-dir", stateDir}, args...)...).CombinedOutput()
		if err != nil {
			tb.Fatalf("weft-control %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	admin("users", "create", "bench")
	authKey := admin("keys", "create", "--user", "bench", "--reusable")
	for _, d := range lab.Nodes {
		if err := d.Up(url, authKey); err != nil {
			tb.Fatalf("%s: up: %v", d.Node.Name, err)
		}
		d.WaitRunning(30 * time.Second)
	}
	bIP, err := b.IPv4()
	if err != nil {
		tb.Fatal(err)
	}
	nettest.WaitFor(tb, 40*time.Second, func() error {
		out, err := a.Tailscale("ping", "-c", "2", "--until-direct=false", bIP.String())
		if err != nil || !strings.Contains(out, "via DERP(bench)") {
			return fmt.Errorf("tailscale ping not via the relay: %v\n%s", err, out)
		}
		return nil
	})

	b.Node.Start(nettest.Cmd{Name: "iperf3-server", Args: []string{"iperf3", "-s", "-B", bIP.String()}})
	nettest.WaitFor(tb, 10*time.Second, func() error { return tcpListening(b.Node, 5201) })

	idleAvg, idleMin := pingRTT(tb, a.Node, bIP.String())

	drops0 := queueDrops(relay)
	bp0, _ := relay.Metric("derp_backpressure_waits_total")
	cpu0 := procCPU(relay.Proc.Pid())
	io0 := readProcIO(relay.Proc.Pid())
	cs0 := ctxSwitches(relay.Proc.Pid())
	busy0 := machineBusy()
	ccpu0 := procCPU(a.Proc.Pid()) + procCPU(b.Proc.Pid())
	cdrops0 := clientDERPDrops(a)
	tun0 := tunTX(a.Node)
	ctx, cancel := context.WithTimeout(context.Background(), rig.duration+60*time.Second)
	defer cancel()
	secs := strconv.Itoa(int(rig.duration / time.Second))
	profDone := make(chan error, 1)
	if profiling {
		go func() { profDone <- fetchProfile(relayNode, rig.profile, rig.duration-time.Second) }()
	} else {
		profDone <- nil
	}
	out, err := a.Node.ExecContext(ctx, "iperf3", "-c", bIP.String(), "-t", secs, "-O", "1", "-J")
	if err != nil {
		tb.Fatalf("iperf3 through %s: %v\n%s", kind, err, out)
	}
	if err := <-profDone; err != nil {
		tb.Logf("CPU profile: %v", err)
	}
	res := relayedResult{
		relayCPU:    procCPU(relay.Proc.Pid()) - cpu0,
		relayIO:     readProcIO(relay.Proc.Pid()).sub(io0),
		relayCS:     ctxSwitches(relay.Proc.Pid()) - cs0,
		machineBusy: machineBusy() - busy0,
		clientCPU:   procCPU(a.Proc.Pid()) + procCPU(b.Proc.Pid()) - ccpu0,
		clientDrops: clientDERPDrops(a) - cdrops0,
		tunSegs:     tunTX(a.Node).segs(tun0),
		queueDrops:  -1,
		idleRTT:     idleAvg,
		idleRTTMin:  idleMin,
	}
	if d0, d1 := drops0, queueDrops(relay); d0 >= 0 && d1 >= 0 {
		res.queueDrops = d1 - d0
	}
	var rep struct {
		End struct {
			SumSent struct {
				Retransmits int `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			Streams []struct {
				Sender struct {
					MeanRTT int `json:"mean_rtt"` // µs
				} `json:"sender"`
			} `json:"streams"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Error != "" {
		tb.Fatalf("iperf3 JSON: %v %s\n%s", err, rep.Error, out)
	}
	res.gbps = rep.End.SumReceived.BitsPerSecond / 1e9
	res.retransmits = rep.End.SumSent.Retransmits
	if len(rep.End.Streams) > 0 {
		res.meanRTT = time.Duration(rep.End.Streams[0].Sender.MeanRTT) * time.Microsecond
	}
	res.bpWaits = -1
	if v, err := relay.Metric("derp_backpressure_waits_total"); err == nil {
		res.bpWaits = v - bp0
	}
	return res
}

// startControl runs weft-control over TLS in the lab's control node with
// the given DERP map and no embedded relay, like the interop scenarios,
// and returns its URL.
func startControl(tb testing.TB, lab *interop.Lab, bin, mapFile string) string {
	url := "https://" + lab.Control.Addr.String()
	stateDir := filepath.Join(lab.Dir(), "weft-control")
	p := lab.Control.Start(nettest.Cmd{Name: "weft-control", Args: []string{bin,
		"--listen", lab.Control.Addr.String() + ":443", "--server-url", url, "--state-dir", stateDir,
		"--tls-cert", lab.TLS.CertFile, "--tls-key", lab.TLS.KeyFile,
		"--disable-derp", "--derp-map", mapFile, "--log-level", "warn",
	}})
	nettest.WaitFor(tb, 15*time.Second, func() error {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("weft-control exited (%v):\n%s", err, p.Tail(20))
		}
		return exec.Command(bin, "--state-dir", stateDir, "users", "list").Run()
	})
	return url
}

// tcpListening reports whether something in node listens on TCP port.
func tcpListening(node *nettest.Node, port int) error {
	out, err := node.Output("cat", "/proc/net/tcp", "/proc/net/tcp6")
	if err != nil {
		return err
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return nil
		}
	}
	return fmt.Errorf("nothing listens on TCP %d in %s", port, node.Name)
}

// queueDrops sums the relay's drops on full destination queues (upstream
// reasons queue_head and queue_tail), or -1 when they cannot be read.
func queueDrops(r *interop.Relay) float64 {
	path := "/metrics"
	if r.Kind == interop.OfficialDERP {
		path = "/debug/varz"
	}
	resp, err := r.Node.HTTPClient().Get(r.URL() + path)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != 200 {
		return -1
	}
	var sum float64
	found := false
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "derp_packets_dropped") || !(strings.Contains(line, `"queue_head"`) || strings.Contains(line, `"queue_tail"`)) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
			found = true
		}
	}
	if !found {
		return 0
	}
	return sum
}

// procCPU is the user+system CPU time pid has used so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (100 Hz on Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// fetchProfile saves a CPU profile of weft-derp (-debug-listen on the
// relay node's loopback) taken over d.
func fetchProfile(node *nettest.Node, path string, d time.Duration) error {
	c := node.HTTPClient()
	c.Timeout = d + 30*time.Second
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:6060/debug/pprof/profile?seconds=%d", int(d.Seconds())))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// clientDERPDrops reads the official client's counters of packets dropped
// before they reached its DERP connection (write queue full).
func clientDERPDrops(d *interop.Tailscaled) float64 {
	out, err := d.Tailscale("debug", "metrics")
	if err != nil {
		return 0
	}
	var sum float64
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (f[0] == "magicsock_send_derp_dropped" || f[0] == "magicsock_send_derp_error_queue") {
			v, _ := strconv.ParseFloat(f[1], 64)
			sum += v
		}
	}
	return sum
}

// procIO is a process's read/write syscall counts and bytes
// (/proc/PID/io), all threads included.
type procIO struct{ syscr, syscw, rchar, wchar float64 }

func readProcIO(pid int) procIO {
	var p procIO
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return p
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch name {
		case "syscr":
			p.syscr = f
		case "syscw":
			p.syscw = f
		case "rchar":
			p.rchar = f
		case "wchar":
			p.wchar = f
		}
	}
	return p
}

func (p procIO) sub(q procIO) procIO {
	return procIO{p.syscr - q.syscr, p.syscw - q.syscw, p.rchar - q.rchar, p.wchar - q.wchar}
}

// String is "reads N (B bytes avg), writes N (B avg)".
func (p procIO) String() string {
	avg := func(b, n float64) float64 {
		if n == 0 {
			return 0
		}
		return b / n
	}
	return fmt.Sprintf("reads %.0f (%.0f B avg), writes %.0f (%.0f B avg)", p.syscr, avg(p.rchar, p.syscr), p.syscw, avg(p.wchar, p.syscw))
}

// ctxSwitches sums the voluntary and involuntary context switches of every
// thread of pid.
func ctxSwitches(pid int) float64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var sum float64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if name, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(name, "ctxt_switches") {
				f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
				sum += f
			}
		}
	}
	return sum
}

// machineBusy is the machine's non-idle CPU time so far (/proc/stat).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 && i < 8 {
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond
}

// pingRTT pings dst from node 50 times, 20 ms apart, and returns the
// average and minimum round-trip time.
func pingRTT(tb testing.TB, node *nettest.Node, dst string) (avg, minRTT time.Duration) {
	out, err := node.Exec("ping", "-q", "-c", "50", "-i", "0.02", dst)
	if err != nil {
		tb.Fatalf("ping %s: %v\n%s", dst, err, out)
	}
	// rtt min/avg/max/mdev = 0.321/0.456/0.789/0.100 ms
	_, stats, ok := strings.Cut(out, "min/avg/max/mdev = ")
	f := strings.Split(strings.Fields(stats + " ")[0], "/")
	if !ok || len(f) < 2 {
		tb.Fatalf("ping %s: no rtt line in\n%s", dst, out)
	}
	ms := func(s string) time.Duration {
		v, _ := strconv.ParseFloat(s, 64)
		return time.Duration(v * float64(time.Millisecond))
	}
	return ms(f[1]), ms(f[0])
}

// tunStats is what the kernel sent into tailscale0 (read by tailscaled).
type tunStats struct{ bytes, packets float64 }

func tunTX(node *nettest.Node) tunStats {
	out, err := node.Output("ip", "-s", "-j", "link", "show", "dev", "tailscale0")
	if err != nil {
		return tunStats{}
	}
	var links []struct {
		MTU   float64 `json:"mtu"`
		Stats struct {
			TX struct {
				Bytes   float64 `json:"bytes"`
				Packets float64 `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if json.Unmarshal([]byte(out), &links) != nil || len(links) == 0 {
		return tunStats{}
	}
	l := links[0]
	// Bytes in MTU-sized packets: the burst tailscaled splits a GSO
	// packet into.
	return tunStats{bytes: l.Stats.TX.Bytes / l.MTU, packets: l.Stats.TX.Packets}
}

// segs is the average MTU-sized packets per TUN packet since t0.
func (t tunStats) segs(t0 tunStats) float64 {
	if t.packets == t0.packets {
		return 0
	}
	return (t.bytes - t0.bytes) / (t.packets - t0.packets)
}
