package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"weft.dev/weft/control/controltest"
	"weft.dev/weft/wire/ctrl"
)

type target struct {
	url string
	key string
	pid int
}

type result struct {
	registerAll     time.Duration
	registered      int
	rssMB           float64
	cpuSec          float64
	epPeer, epAll   []time.Duration // per-peer arrival, per-trial time until all peers
	newPeer, newAll []time.Duration
}

// probe is what the readers look for while a trial runs.
type probe struct {
	nodeID  int64  // endpoint trial: the patched node
	ep      string // endpoint trial: the new endpoint
	key     string // new-node trial: the new node's key
	start   time.Time
	arrived []atomic.Int64 // per client, ns since start (0: not yet)
	count   atomic.Int64
}

type benchNode struct {
	c    *controltest.Client
	id   int64
	hi   *ctrl.Hostinfo
	body io.ReadCloser
}

var selfIDRe = regexp.MustCompile(`^\{"Node":\{"ID":(\d+)`)

type loader struct {
	t     target
	decs  sync.Pool // *zstd.Decoder
	probe atomic.Pointer[probe]
	nodes []*benchNode
	mu    sync.Mutex
}

func runLoad(ctx context.Context, t target, n, conc, trials int) (*result, error) {
	l := &loader{t: t}
	l.decs.New = func() any {
		d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		return d
	}
	res := &result{}
	cpu0, _ := procCPU(t.pid)

	start := time.Now()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	l.nodes = make([]*benchNode, n)
	var done atomic.Int64
	go progress(&done, n, start)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			bn, err := l.join(ctx, i)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			l.nodes[i] = bn
			done.Add(1)
		}(i)
	}
	wg.Wait()
	res.registerAll = time.Since(start)
	res.registered = int(done.Load())
	fmt.Fprintf(os.Stderr, "\rregistered %d/%d in %s\n", res.registered, n, res.registerAll.Round(time.Millisecond))
	if f := failed.Load(); f > 0 {
		return nil, fmt.Errorf("%d registrations failed, first: %v", f, firstErr.Load())
	}
	cpu1, _ := procCPU(t.pid)
	res.cpuSec = cpu1 - cpu0
	res.rssMB, _ = procRSS(t.pid)
	time.Sleep(time.Second) // let the online-state deltas of the last joins settle

	// Endpoint-change trials.
	for k := 0; k < trials; k++ {
		target := l.nodes[(k*7919)%n]
		ep := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(k >> 8), byte(k), 1}), uint16(40000+k))
		p := &probe{nodeID: target.id, ep: ep.String(), arrived: make([]atomic.Int64, len(l.nodes)+trials+1)}
		p.start = time.Now()
		l.probe.Store(p)
		if err := target.c.LiteUpdate(ctx, ctrl.MapRequest{Endpoints: []netip.AddrPort{ep}, Hostinfo: target.hi}); err != nil {
			return nil, fmt.Errorf("lite update: %w", err)
		}
		peer, all := l.wait(p, len(l.nodes)-1)
		res.epPeer = append(res.epPeer, peer...)
		res.epAll = append(res.epAll, all)
	}
	// New-node trials.
	for k := 0; k < trials; k++ {
		idx := len(l.nodes)
		p := &probe{arrived: make([]atomic.Int64, idx+1)}
		cl, err := controltest.Dial(ctx, t.url, nil)
		if err != nil {
			return nil, err
		}
		p.key = cl.Node.Public().String()
		p.start = time.Now()
		l.probe.Store(p)
		bn, err := l.joinWith(ctx, cl, idx)
		if err != nil {
			return nil, err
		}
		peer, all := l.wait(p, idx)
		l.nodes = append(l.nodes, bn)
		res.newPeer = append(res.newPeer, peer...)
		res.newAll = append(res.newAll, all)
	}
	l.probe.Store(nil)
	if holdFor > 0 {
		fmt.Fprintf(os.Stderr, "holding %d nodes for %s\n", len(l.nodes), holdFor)
		time.Sleep(holdFor)
	}
	if r, err := procRSS(t.pid); err == nil && r > res.rssMB {
		res.rssMB = r
	}
	for _, bn := range l.nodes {
		bn.body.Close()
		bn.c.Close()
	}
	return res, nil
}

func progress(done *atomic.Int64, n int, start time.Time) {
	for d := done.Load(); d < int64(n); d = done.Load() {
		fmt.Fprintf(os.Stderr, "\rregistering %d/%d (%s)", d, n, time.Since(start).Round(time.Second))
		time.Sleep(500 * time.Millisecond)
		if time.Since(start) > 30*time.Minute {
			return
		}
	}
}

// wait returns per-peer arrival times and the time until want peers had it
// (10 s cap: a missing peer counts as 10 s).
func (l *loader) wait(p *probe, want int) ([]time.Duration, time.Duration) {
	deadline := time.Now().Add(10 * time.Second)
	for p.count.Load() < int64(want) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	var peer []time.Duration
	var all time.Duration
	for i := range p.arrived {
		v := p.arrived[i].Load()
		if v == 0 {
			continue
		}
		d := time.Duration(v)
		peer = append(peer, d)
		all = max(all, d)
	}
	if p.count.Load() < int64(want) {
		if os.Getenv("BENCH_DEBUG") != "" {
			var missing []int
			for i := range p.arrived {
				if p.arrived[i].Load() == 0 {
					missing = append(missing, i)
				}
			}
			fmt.Fprintf(os.Stderr, "missing %v\n", missing)
		}
		all = 10 * time.Second
		for i := int64(0); i < int64(want)-p.count.Load(); i++ {
			peer = append(peer, 10*time.Second)
		}
	}
	return peer, all
}

func (l *loader) join(ctx context.Context, i int) (*benchNode, error) {
	c, err := controltest.Dial(ctx, l.t.url, nil)
	if err != nil {
		return nil, err
	}
	return l.joinWith(ctx, c, i)
}

func (l *loader) joinWith(ctx context.Context, c *controltest.Client, i int) (*benchNode, error) {
	hi := &ctrl.Hostinfo{Hostname: "bench-" + strconv.Itoa(i), OS: "linux", IPNVersion: "1.102.5"}
	r, err := c.Register(ctx, ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: l.t.key}, Hostinfo: hi})
	if err != nil {
		c.Close()
		return nil, err
	}
	if r.Error != "" || r.AuthURL != "" {
		c.Close()
		return nil, fmt.Errorf("register: %q %q", r.Error, r.AuthURL)
	}
	if err := c.LiteUpdate(ctx, ctrl.MapRequest{Hostinfo: hi}); err != nil {
		c.Close()
		return nil, err
	}
	body, err := c.StreamBody(ctx, ctrl.MapRequest{Hostinfo: hi})
	if err != nil {
		c.Close()
		return nil, err
	}
	bn := &benchNode{c: c, body: body, hi: hi}
	br := bufio.NewReaderSize(body, 64<<10)
	payload, err := readFrame(br, nil)
	if err != nil {
		body.Close()
		c.Close()
		return nil, fmt.Errorf("first frame: %w", err)
	}
	id, err := l.selfID(payload)
	if err != nil {
		body.Close()
		c.Close()
		return nil, err
	}
	bn.id = id
	go l.read(bn, br, i)
	return bn, nil
}

// selfID reads the self node ID from the start of a full map without
// decoding the whole (possibly multi-megabyte) frame.
func (l *loader) selfID(payload []byte) (int64, error) {
	d := l.decs.Get().(*zstd.Decoder)
	defer l.decs.Put(d)
	// Release the stream before the decoder goes back to the pool: with
	// concurrency 1 an unfinished stream holds the only block decoder and
	// a later DecodeAll would wait for it forever.
	defer d.Reset(nil)
	if err := d.Reset(bytes.NewReader(payload)); err != nil {
		return 0, err
	}
	head := make([]byte, 256)
	n, _ := io.ReadFull(d, head)
	m := selfIDRe.FindSubmatch(head[:n])
	if m == nil {
		return 0, fmt.Errorf("first frame does not start with the self node: %.80q", head[:n])
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

type deltaFrame struct {
	PeersChanged []struct {
		ID        int64
		Key       string
		Endpoints []string
	}
	PeersChangedPatch []struct {
		NodeID    int64
		Endpoints []string
	}
}

// read drains one node's stream, decoding small frames only while a trial
// runs.
func (l *loader) read(bn *benchNode, br *bufio.Reader, idx int) {
	var buf, dec []byte
	for {
		var err error
		buf, err = readFrame(br, buf[:0])
		if err != nil {
			if os.Getenv("BENCH_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "reader %d: %v\n", idx, err)
			}
			return
		}
		p := l.probe.Load()
		if p == nil || len(buf) > 1<<20 || idx >= len(p.arrived) || p.arrived[idx].Load() != 0 {
			continue
		}
		d := l.decs.Get().(*zstd.Decoder)
		dec, err = d.DecodeAll(buf, dec[:0])
		l.decs.Put(d)
		if err != nil {
			if os.Getenv("BENCH_DEBUG") != "" {
				fmt.Fprintf(os.Stderr, "reader %d: decode: %v\n", idx, err)
			}
			continue
		}
		var f deltaFrame
		if json.Unmarshal(dec, &f) != nil {
			continue
		}
		hit := false
		if p.key != "" {
			for _, pc := range f.PeersChanged {
				hit = hit || pc.Key == p.key
			}
		} else {
			// Servers may send an endpoint change as a patch (weft) or as
			// a whole node (headscale); both count.
			for _, pc := range f.PeersChangedPatch {
				hit = hit || pc.NodeID == p.nodeID && slices.Contains(pc.Endpoints, p.ep)
			}
			for _, pc := range f.PeersChanged {
				hit = hit || pc.ID == p.nodeID && slices.Contains(pc.Endpoints, p.ep)
			}
		}
		if hit && p.arrived[idx].CompareAndSwap(0, int64(time.Since(p.start))) {
			p.count.Add(1)
		}
	}
}

func readFrame(r *bufio.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(hdr[:]))
	if n > 512<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	buf = slices.Grow(buf[:0], n)[:n]
	_, err := io.ReadFull(r, buf)
	return buf, err
}

func (r *result) print(name string, n int) {
	fmt.Printf("\n== %s, N=%d ==\n", name, n)
	fmt.Printf("register all:            %v (%d nodes, %.0f/s)\n", r.registerAll.Round(time.Millisecond), r.registered, float64(r.registered)/r.registerAll.Seconds())
	fmt.Printf("server RSS:              %.1f MB\n", r.rssMB)
	fmt.Printf("server CPU (register):   %.1f s\n", r.cpuSec)
	fmt.Printf("endpoint delta per peer: p50 %v  p99 %v\n", pct(r.epPeer, 50), pct(r.epPeer, 99))
	fmt.Printf("endpoint delta all:      p50 %v  p99 %v\n", pct(r.epAll, 50), pct(r.epAll, 99))
	fmt.Printf("new node per peer:       p50 %v  p99 %v\n", pct(r.newPeer, 50), pct(r.newPeer, 99))
	fmt.Printf("new node all:            p50 %v  p99 %v\n", pct(r.newAll, 50), pct(r.newAll, 99))
}

func printRatios(w, h *result) {
	ratio := func(a, b time.Duration) string {
		if a <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1fx", float64(b)/float64(a))
	}
	fmt.Printf("ratio headscale/weft: register %s, endpoint p99 %s, new-node p99 %s, RSS %.1fx\n",
		ratio(w.registerAll, h.registerAll), ratio(pct(w.epAll, 99), pct(h.epAll, 99)),
		ratio(pct(w.newAll, 99), pct(h.newAll, 99)), h.rssMB/max(w.rssMB, 0.1))
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[min(max(i-1, 0), len(s)-1)].Round(100 * time.Microsecond)
}

func procRSS(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS")
}

// procCPU returns user+system CPU seconds of pid (clock ticks of 1/100 s).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short stat")
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	k, _ := strconv.ParseFloat(f[12], 64)
	return (u + k) / 100, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitHTTP(ctx context.Context, url string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server did not come up at %s: %w", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
