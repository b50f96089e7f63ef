// Command policy measures weft-control's policy path at scale: it compiles
// a 5,000-node, 500-rule policy, reports the per-node filter size, and
// times a one-rule change from `policy set` until the frames for every
// affected node are written by the real mapper to 5,000 live map sessions.
// The baseline, measured in the same run, is what a server without
// incremental policy work would do for that change: compile the new policy
// and rebuild every node's filter and peer list.
//
// It is a benchmark, not a test. Run from the repository root:
//
//	go run ./bench/policy -nodes 5000 -rules 500
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/control/mapper"
	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/policy"
	"weft.dev/weft/policy/policytest"
	"weft.dev/weft/wire/key"
)

func main() {
	nNodes := flag.Int("nodes", 5000, "nodes in the tailnet")
	nRules := flag.Int("rules", 500, "ACL rules")
	window := flag.Duration("window", 0, "mapper batching window (0: the server's default, 20ms + 30µs per session)")
	flag.Parse()
	if err := run(*nNodes, *nRules, *window); err != nil {
		fmt.Fprintln(os.Stderr, "bench/policy:", err)
		os.Exit(1)
	}
}

func run(nNodes, nRules int, window time.Duration) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	text := policytest.Policy(nRules)
	// The one-rule change: rule 5 (a CIDR reaching tag:t5) grows its port range.
	changed := strings.Replace(text, `"tag:t5:8000-9000"`, `"tag:t5:8000-9001"`, 1)
	if changed == text {
		return fmt.Errorf("policy generator changed: the edited rule is missing")
	}

	b, err := mapper.New(mapper.Config{Domain: "weft.bench", Window: window, QueueLen: 64})
	if err != nil {
		return err
	}
	defer b.Close()
	st, err := state.New(ctx, state.Config{Store: store.NewMemory(), OnChange: b.OnChange})
	if err != nil {
		return err
	}
	b.Start(st)
	fmt.Printf("tailnet: %d nodes, %d rules, %d CPUs\n", nNodes, nRules, runtime.GOMAXPROCS(0))
	start := time.Now()
	if err := populate(ctx, st, nNodes); err != nil {
		return err
	}
	fmt.Printf("registered %d nodes in %v\n", nNodes, time.Since(start).Round(time.Millisecond))

	// Compile alone, on the registered nodes.
	p, err := policy.Parse([]byte(text))
	if err != nil {
		return err
	}
	nodes := policyNodes(st)
	t0 := time.Now()
	c, err := p.Compile(nodes)
	if err != nil {
		return err
	}
	compile := time.Since(t0)
	t0 = time.Now()
	var rules, dsts, bytes, maxBytes, peers int
	for _, n := range nodes {
		f := c.FilterFor(n.ID)
		js, _ := json.Marshal(f)
		rules += len(f)
		for _, r := range f {
			dsts += len(r.DstPorts)
		}
		bytes += len(js)
		maxBytes = max(maxBytes, len(js))
		peers += len(c.PeersOf(n.ID))
	}
	filters := time.Since(t0)
	n := float64(len(nodes))
	fmt.Printf("compile: %v; every node's filter and peers: %v\n", compile.Round(time.Millisecond), filters.Round(time.Millisecond))
	fmt.Printf("per-node filter: %.2f rules, %.1f dst ports, %.0f bytes JSON (max %d); %.0f visible peers\n",
		float64(rules)/n, float64(dsts)/n, float64(bytes)/n, maxBytes, float64(peers)/n)

	if _, err := st.SetPolicy(ctx, []byte(text), state.PolicyOrigin{}); err != nil {
		return err
	}
	sessions, err := openSessions(ctx, b, nodes)
	if err != nil {
		return err
	}
	fmt.Printf("%d map sessions open (full maps written) in %v\n", len(sessions), time.Since(start).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // let online-state deltas settle
	for _, s := range sessions {
		s.mark()
	}

	// The one-rule change, through state and the real mapper.
	t0 = time.Now()
	res, err := st.SetPolicy(ctx, []byte(changed), state.PolicyOrigin{})
	if err != nil {
		return err
	}
	applied := time.Since(t0)
	affected := make(map[int64]bool, len(res.Affected))
	for _, id := range res.Affected {
		affected[id] = true
	}
	deadline := time.Now().Add(30 * time.Second)
	var last time.Time
	for _, id := range res.Affected {
		s := sessions[id]
		for {
			if at := s.firstAfterMark(); !at.IsZero() {
				last = maxTime(last, at)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("node %d never got its frame", id)
			}
			time.Sleep(time.Millisecond)
		}
	}
	pushed := last.Sub(t0)
	time.Sleep(200 * time.Millisecond)
	stray := 0
	for id, s := range sessions {
		if !affected[id] && !s.firstAfterMark().IsZero() {
			stray++
		}
	}

	// Baseline: recompile and rebuild every node's filter and peers.
	p2, err := policy.Parse([]byte(changed))
	if err != nil {
		return err
	}
	t0 = time.Now()
	c2, err := p2.Compile(nodes)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		json.Marshal(c2.FilterFor(n.ID))
		c2.PeersOf(n.ID)
	}
	baseline := time.Since(t0)

	win := window
	if win == 0 {
		win = 20*time.Millisecond + time.Duration(len(sessions))*30*time.Microsecond
	}
	fmt.Printf("one-rule change: %d nodes affected; state (compile, diff, emit) %v; frames written to all affected sessions %v after policy set (of which the mapper's batching window %v)\n",
		len(res.Affected), applied.Round(time.Millisecond), pushed.Round(time.Millisecond), win)
	fmt.Printf("frames to unaffected sessions: %d\n", stray)
	fmt.Printf("baseline (full recompile + every node's filter and peers): %v; incremental push is %.1fx faster\n",
		baseline.Round(time.Millisecond), float64(baseline)/float64(pushed))
	return nil
}

// populate registers nNodes: 80% user devices of 1,000 users, the rest
// tagged, some of them subnet routers and exit nodes with approved routes.
func populate(ctx context.Context, st *state.State, nNodes int) error {
	userIDs := make([]int64, 1000)
	for i := range userIDs {
		u, err := st.CreateUser(ctx, fmt.Sprintf("user%d@example.com", i), "", "")
		if err != nil {
			return err
		}
		userIDs[i] = u.ID
	}
	for i := range nNodes {
		p := state.RegisterParams{
			MachineKey: key.NewMachine().Public(), NodeKey: key.NewNode().Public(),
			UserID: userIDs[i%1000], Hostname: fmt.Sprintf("node%d", i),
		}
		var routes []netip.Prefix
		switch {
		case i%5 != 0:
		case i%50 == 0:
			p.Tags = []string{fmt.Sprintf("tag:t%d", i%100)}
			routes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
		case i%25 == 0:
			p.Tags = []string{fmt.Sprintf("tag:t%d", i%100)}
			routes = []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)}
		default:
			p.Tags = []string{fmt.Sprintf("tag:t%d", i%100)}
		}
		p.AdvertisedRoutes = routes
		n, err := st.Register(ctx, p)
		if err != nil {
			return err
		}
		if routes != nil {
			if _, err := st.SetApprovedRoutes(ctx, n.ID, routes); err != nil {
				return err
			}
		}
	}
	return nil
}

func policyNodes(st *state.State) []policy.Node {
	var out []policy.Node
	for _, n := range st.Snapshot().Nodes {
		pn := policy.Node{ID: n.ID, Tags: n.Tags, Routes: n.ServedRoutes(), IPs: []netip.Addr{n.IPv4, n.IPv6}}
		if !n.IsTagged() {
			u, _ := st.User(n.UserID)
			pn.User = u.Name
		}
		out = append(out, pn)
	}
	return out
}

// session is one long poll whose writer records when frames arrive.
type session struct {
	mu sync.Mutex
	// guarded by mu:
	marked bool
	first  time.Time // first frame written after mark
	frames atomic.Int64
}

func (s *session) Write(p []byte) (int, error) {
	if len(p) >= 4 && int(binary.LittleEndian.Uint32(p)) == len(p)-4 {
		s.frames.Add(1)
		s.mu.Lock()
		if s.marked && s.first.IsZero() {
			s.first = time.Now()
		}
		s.mu.Unlock()
	}
	return len(p), nil
}

func (s *session) mark() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marked, s.first = true, time.Time{}
}

func (s *session) firstAfterMark() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.first
}

// openSessions starts a streaming map session per node and waits until
// every full map is written.
func openSessions(ctx context.Context, b *mapper.Batcher, nodes []policy.Node) (map[int64]*session, error) {
	out := make(map[int64]*session, len(nodes))
	errc := make(chan error, len(nodes))
	for _, n := range nodes {
		s := &session{}
		out[n.ID] = s
		go func() { errc <- b.Serve(ctx, n.ID, true, 130, s, func() {}) }()
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		open := 0
		for _, s := range out {
			if s.frames.Load() > 0 {
				open++
			}
		}
		if open == len(out) {
			return out, nil
		}
		select {
		case err := <-errc:
			return nil, fmt.Errorf("a session ended: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d sessions got no full map", len(out)-open, len(out))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
