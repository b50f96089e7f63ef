package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"weft.dev/weft/interop"

	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

func main() {
	var (
		derperBin = flag.String("derper", "", "official derper v1.102.5 binary (default: the interop cache, installed if missing)")
		weftBin   = flag.String("weft-derp", "", "weft-derp binary (default: go build ./cmd/weft-derp)")
		baseBin   = flag.String("weft-derp-base", "", "a second weft-derp binary (e.g. built from an older commit), run as \"weft-derp-base\" in the relayed scenario for an A/B comparison in the same run")
		relayList = flag.String("relays", "", "comma-separated relays of the relayed scenario: derper, weft-derp, weft-derp-base (default: derper,weft-derp and weft-derp-base when -weft-derp-base is set)")
		scenarios = flag.String("scenarios", "pps,idle,relayed", "comma-separated: pps (in-process clients), idle (RSS), relayed (official clients + iperf3, root)")
		clients   = flag.Int("clients", 1000, "clients in the pps mesh scenario")
		size      = flag.Int("size", 1200, "packet payload bytes")
		duration  = flag.Duration("duration", 5*time.Second, "measurement time per pps scenario")
		idle      = flag.Int("idle", 10000, "idle connections in the idle scenario")
		iperfTime = flag.Duration("iperf-time", 10*time.Second, "iperf3 run time per relay in the relayed scenario")
		runs      = flag.Int("runs", 1, "relayed runs per relay (alternating), medians reported")
		profile   = flag.String("cpuprofile", "", "write a CPU profile of weft-derp during its (last) relayed run here")
	)
	var variants []string
	flag.Func("variant", "extra relayed contender NAME=ENV=VAL;ENV=VAL...: the weft-derp binary with that environment (repeatable; add NAME to -relays)", func(v string) error {
		variants = append(variants, v)
		return nil
	})
	flag.Parse()
	b := &bench{clients: *clients, size: *size, duration: *duration, idle: *idle, iperfTime: *iperfTime, runs: *runs, profile: *profile, baseBin: *baseBin, variants: map[string][]string{}}
	for _, v := range variants {
		name, env, _ := strings.Cut(v, "=")
		b.variants[name] = strings.Split(env, ";")
	}
	if *relayList != "" {
		b.relayed = strings.Split(*relayList, ",")
	} else {
		b.relayed = []string{"derper", "weft-derp"}
		if *baseBin != "" {
			b.relayed = append(b.relayed, "weft-derp-base")
		}
	}
	if err := b.run(*derperBin, *weftBin, strings.Split(*scenarios, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench holds the settings of one run.
type bench struct {
	clients, size, idle, runs int
	duration, iperfTime       time.Duration
	profile                   string
	dir                       string
	baseBin                   string   // -weft-derp-base
	relayed                   []string // relay labels of the relayed scenario
	variants                  map[string][]string
}

func (b *bench) run(derperBin, weftBin string, scenarios []string) error {
	dir, err := os.MkdirTemp("", "derp-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.dir = dir
	var ts interop.TSBins
	var weftControl string
	err = runScenario("setup", func(tb testing.TB) {
		if slices.Contains(scenarios, "relayed") || derperBin == "" {
			ts = interop.RequireTailscale(tb)
		}
		if derperBin == "" {
			derperBin = ts.Derper
		}
		if slices.Contains(scenarios, "relayed") {
			weftControl = buildCmd(tb, dir, "weft-control")
		}
		if weftBin == "" {
			weftBin = buildCmd(tb, dir, "weft-derp")
		}
	})
	if err != nil {
		return err
	}
	relays := []struct{ name, bin string }{{"derper", derperBin}, {"weft-derp", weftBin}}
	if b.baseBin != "" {
		relays = append(relays, struct{ name, bin string }{"weft-derp-base", b.baseBin})
	}
	for _, sc := range scenarios {
		switch sc {
		case "pps":
			err = b.pps(relays)
		case "idle":
			err = b.idleRSS(relays)
		case "relayed":
			err = b.relayedRuns(relayedRig{ts: ts, weftControl: weftControl, duration: b.iperfTime, profile: b.profile}, derperBin, weftBin)
		default:
			err = fmt.Errorf("unknown scenario %q (want pps, idle, relayed)", sc)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func buildCmd(tb testing.TB, dir, name string) string {
	out := filepath.Join(dir, name)
	if b, err := exec.Command("go", "build", "-o", out, "weft.dev/weft/cmd/"+name).CombinedOutput(); err != nil {
		tb.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// pps is the in-process packets/s scenario: the same Go client drives both
// relays, so only the relay differs.
func (b *bench) pps(relays []struct{ name, bin string }) error {
	type result struct{ single, mesh rate }
	results := map[string]result{}
	for _, r := range relays {
		rp, err := startRelay(r.bin, b.dir, r.name)
		if err != nil {
			return err
		}
		single, err := measure(rp.url, 2, b.size, b.duration)
		if err == nil {
			var mesh rate
			mesh, err = measure(rp.url, b.clients, b.size, b.duration)
			results[r.name] = result{single, mesh}
		}
		rp.stop()
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		fmt.Printf("%-14s single flow: %10.0f pkt/s (%5.2f%% lost)   %d clients: %10.0f pkt/s (%5.2f%% lost)\n",
			r.name, results[r.name].single.pps, results[r.name].single.lost*100, b.clients,
			results[r.name].mesh.pps, results[r.name].mesh.lost*100)
	}
	o, w := results["derper"], results["weft-derp"]
	fmt.Printf("ratio weft/derper: single flow %.2fx, %d clients %.2fx\n", w.single.pps/o.single.pps, b.clients, w.mesh.pps/o.mesh.pps)
	if base, ok := results["weft-derp-base"]; ok {
		fmt.Printf("ratio weft/weft-derp-base: single flow %.2fx, %d clients %.2fx\n", w.single.pps/base.single.pps, b.clients, w.mesh.pps/base.mesh.pps)
	}
	return nil
}

// idleRSS measures each relay's memory with b.idle idle clients.
func (b *bench) idleRSS(relays []struct{ name, bin string }) error {
	per := map[string]float64{}
	for _, r := range relays {
		rp, err := startRelay(r.bin, b.dir, r.name)
		if err != nil {
			return err
		}
		kib, total, err := idleRSS(rp, b.idle)
		rp.stop()
		if err != nil {
			return fmt.Errorf("%s idle: %w", r.name, err)
		}
		per[r.name] = kib
		fmt.Printf("%-14s %d idle connections: RSS %7.1f MiB (%5.1f KiB per connection)\n", r.name, b.idle, total, kib)
	}
	fmt.Printf("ratio weft/derper: memory per idle connection %.2fx\n", per["weft-derp"]/per["derper"])
	return nil
}

// relayedRuns runs iperf3 between official clients through each relay of
// b.relayed, alternating relays when runs > 1, and reports medians and the
// ratios to derper (and of weft-derp to weft-derp-base when both ran).
func (b *bench) relayedRuns(rig relayedRig, derperBin, weftBin string) error {
	var cs []contender
	for _, l := range b.relayed {
		switch l {
		case "derper":
			cs = append(cs, contender{label: l, kind: interop.OfficialDERP, bin: derperBin})
		case "weft-derp":
			cs = append(cs, contender{label: l, kind: interop.WeftDERP, bin: weftBin, profile: true})
		case "weft-derp-base":
			if b.baseBin == "" {
				return fmt.Errorf("-relays weft-derp-base needs -weft-derp-base")
			}
			cs = append(cs, contender{label: l, kind: interop.WeftDERP, bin: b.baseBin})
		default:
			env, ok := b.variants[l]
			if !ok {
				return fmt.Errorf("unknown relay %q (want derper, weft-derp, weft-derp-base or a -variant)", l)
			}
			cs = append(cs, contender{label: l, kind: interop.WeftDERP, bin: weftBin, env: env})
		}
	}
	res := map[string][]relayedResult{}
	for i := range b.runs {
		for _, c := range cs {
			r := rig
			if i < b.runs-1 || !c.profile {
				r.profile = ""
			}
			var got relayedResult
			err := runScenario(fmt.Sprintf("relayed-%s-%d", c.label, i+1), func(tb testing.TB) { got = runRelayed(tb, r, c) })
			if err != nil {
				return err
			}
			fmt.Printf("  run %d %-14s %6.3f Gbit/s  %6d retransmits  rtt %v (idle ping %v avg, %v min)  relay queue drops %s (backpressure waits %s)  client DERP queue drops %.0f (TUN bursts %.1f pkts)  CPU relay %v, tailscaled x2 %v, others %v; relay %v, %.0f context switches\n",
				i+1, c.label, got.gbps, got.retransmits, got.meanRTT, got.idleRTT.Round(time.Microsecond), got.idleRTTMin.Round(time.Microsecond), dropsString(got.queueDrops), dropsString(got.bpWaits), got.clientDrops, got.tunSegs,
				got.relayCPU.Round(10*time.Millisecond), got.clientCPU.Round(10*time.Millisecond),
				(got.machineBusy - got.relayCPU - got.clientCPU).Round(10*time.Millisecond), got.relayIO, got.relayCS)
			res[c.label] = append(res[c.label], got)
		}
	}
	med := map[string]relayedResult{}
	for _, c := range cs {
		med[c.label] = medianResult(res[c.label])
		m := med[c.label]
		fmt.Printf("%-14s official tailscaled x2, UDP blocked, iperf3 TCP 1 stream %v: %6.3f Gbit/s  %6d retransmits  queue drops %s  relay CPU %.2f s/Gbit  idle ping %v\n",
			c.label, b.iperfTime, m.gbps, m.retransmits, dropsString(m.queueDrops), m.relayCPU.Seconds()/(m.gbps*b.iperfTime.Seconds()),
			medianIdleRTT(res[c.label]).Round(time.Microsecond))
	}
	ratio := func(a, b string) {
		ra, rb := res[a], res[b]
		if len(ra) == 0 || len(rb) == 0 {
			return
		}
		var per []string
		for i := range min(len(ra), len(rb)) {
			per = append(per, fmt.Sprintf("%.2f", ra[i].gbps/rb[i].gbps))
		}
		fmt.Printf("ratio %s/%s: relayed TCP throughput %.2fx (median of each); per run %s\n",
			a, b, med[a].gbps/med[b].gbps, strings.Join(per, " "))
	}
	ratio("weft-derp", "derper")
	ratio("weft-derp-base", "derper")
	ratio("weft-derp", "weft-derp-base")
	return nil
}

func dropsString(d float64) string {
	if d < 0 {
		return "n/a"
	}
	return strconv.FormatFloat(d, 'f', 0, 64)
}

// medianIdleRTT is the median of the runs' idle ping averages.
func medianIdleRTT(rs []relayedResult) time.Duration {
	var d []time.Duration
	for _, r := range rs {
		d = append(d, r.idleRTT)
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// medianResult takes the run with the median throughput.
func medianResult(rs []relayedResult) relayedResult {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b relayedResult) int { return cmp.Compare(a.gbps, b.gbps) })
	return s[len(s)/2]
}

// relayProc is a relay process on loopback.
type relayProc struct {
	url  string // http://127.0.0.1:port/derp
	pid  int
	stop func()
}

// startRelay runs a relay binary with derper flags on a free loopback port
// (plain HTTP: a non-443 port without -certmode=manual).
func startRelay(bin, dir, name string) (*relayProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-a", addr, "-stun=false", "-http-port", "-1", "-c", filepath.Join(dir, name+".key"))
	logf, _ := os.Create(filepath.Join(dir, name+".log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s did not start (log in %s)", bin, logf.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &relayProc{url: "http://" + addr + "/derp", pid: cmd.Process.Pid, stop: stop}, nil
}

type rate struct {
	pps  float64 // delivered packets per second
	lost float64 // fraction of sent packets not delivered
}

// measure connects n clients. With n == 2 it is one flow, flat out:
// client 0 sends to client 1 as fast as Send returns. With more clients they
// form pairs that ping-pong with a window of outstanding packets per pair
// (closed loop), so the relay, not the client process, is the bottleneck and
// overload does not turn into disconnects. Deliveries are counted over d
// after a one-second warm-up.
func measure(url string, n, size int, d time.Duration) (rate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	cs := make([]*derpclient.Client, n)
	for i := range cs {
		c, err := derpclient.Dial(ctx, url, key.NewNode())
		if err != nil {
			return rate{}, fmt.Errorf("client %d: %w", i, err)
		}
		cs[i] = c
	}
	var sent, recv atomic.Int64
	var measuring atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	send := func(c *derpclient.Client, dst key.NodePublic, pkt []byte) bool {
		if c.Send(dst, pkt) != nil {
			return false
		}
		if measuring.Load() {
			sent.Add(1)
		}
		return true
	}
	const window = 16
	for i, c := range cs {
		peer := cs[i^1]
		if i^1 >= n {
			peer = cs[0]
		}
		initiator := i%2 == 0
		progress := new(atomic.Int64)
		wg.Add(1)
		go func() { // receiver: count, and echo (responder) or refill (initiator)
			defer wg.Done()
			for {
				m, err := c.Recv()
				if err != nil {
					return
				}
				if m.Type != derp.FrameRecvPacket {
					continue
				}
				if measuring.Load() {
					recv.Add(1)
				}
				progress.Add(1)
				if n == 2 && !initiator {
					continue // single flow: client 1 only receives
				}
				if !send(c, peer.PublicKey(), m.Packet) {
					return
				}
			}
		}()
		if !initiator {
			continue
		}
		wg.Add(1)
		go func() { // initiator: fill the window, refill it if packets were lost
			defer wg.Done()
			pkt := make([]byte, size)
			if n == 2 {
				for seq := uint64(0); ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					binary.BigEndian.PutUint64(pkt, seq)
					if !send(c, peer.PublicKey(), pkt) {
						return
					}
				}
			}
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			last := int64(-1)
			for {
				if p := progress.Load(); p == last {
					for range window {
						if !send(c, peer.PublicKey(), pkt) {
							return
						}
					}
				} else {
					last = p
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
	}
	time.Sleep(time.Second)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(d)
	measuring.Store(false)
	elapsed := time.Since(start)
	got, put := recv.Load(), sent.Load()
	close(stop)
	for _, c := range cs {
		c.Close()
	}
	wg.Wait()
	lost := 0.0
	if put > got {
		lost = float64(put-got) / float64(put)
	}
	return rate{pps: float64(got) / elapsed.Seconds(), lost: lost}, nil
}
