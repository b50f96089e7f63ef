package nettest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// NamePrefix starts the name of every namespace this package creates.
const NamePrefix = "wft-"

// markerDir holds one file per live namespace naming the PID of the test
// process that owns it, so a later run can remove namespaces left behind by a
// test binary that was killed before its cleanups ran (go test -timeout).
const markerDir = "/run/weft-nettest"

// labTimeout bounds each ip/nft command used to build or tear down a lab.
const labTimeout = 20 * time.Second

// Lab is a set of namespaces, segments and processes owned by one test. It
// is torn down by t.Cleanup: processes are stopped (process group, SIGTERM
// then SIGKILL), the tails of their logs are printed if the test failed, and
// every namespace is deleted.
type Lab struct {
	t   testing.TB
	id  string // random, part of every namespace name of this lab
	dir string // per-lab scratch and log directory

	mu sync.Mutex
	// Fields below are guarded by mu.
	namespaces []string // created, in order
	procs      []*Proc
	segments   int // number of segments handed out
	logNames   map[string]bool
}

// NewLab returns an empty lab for t. It skips or fails t like [RequireRoot]
// and [RequireTools] when the lab cannot be built here.
func NewLab(t testing.TB) *Lab {
	t.Helper()
	RequireRoot(t)
	RequireTools(t, "ip", "nft")
	l := &Lab{
		t:        t,
		id:       randomHex(3),
		dir:      t.TempDir(), // before Cleanup: removed after the logs are printed
		logNames: map[string]bool{},
	}
	reapStale(t.Logf)
	t.Cleanup(l.close)
	return l
}

// Dir is a per-lab directory for logs, state and sockets; it is removed when
// the test ends.
func (l *Lab) Dir() string { return l.dir }

// ID is the random part shared by this lab's namespace names.
func (l *Lab) ID() string { return l.id }

// T is the test that owns the lab.
func (l *Lab) T() testing.TB { return l.t }

// Segment is one layer-2 network: a bridge in its own switch namespace and a
// /24 from 198.18.0.0/15.
type Segment struct {
	lab *Lab
	// Switch is the namespace holding the bridge br0.
	Switch string
	// Prefix is the segment's subnet, 198.18.N.0/24.
	Prefix netip.Prefix
	// Gateway is the default route of nodes on this segment; invalid (the
	// zero Addr) unless the segment sits behind a router from [Lab.NewNAT].
	Gateway netip.Addr

	mu sync.Mutex
	// Fields below are guarded by mu.
	next  netip.Addr // next host address to hand out
	ports int        // bridge ports created
}

// NewSegment creates a switch namespace with a bridge and reserves the next
// free 198.18.N.0/24 of this lab (N = 1, 2, ...). Labs are isolated from each
// other, so parallel labs reuse the same subnets without conflict.
func (l *Lab) NewSegment() *Segment {
	l.t.Helper()
	l.mu.Lock()
	l.segments++
	n := l.segments
	l.mu.Unlock()
	if n > 254 {
		l.t.Fatalf("nettest: more than 254 segments in one lab")
	}
	prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(n), 0}), 24)
	s := &Segment{lab: l, Prefix: prefix, next: prefix.Addr().Next()}
	s.Switch = l.newNamespace(fmt.Sprintf("sw%d", n))
	l.ip("-n", s.Switch, "link", "add", "br0", "type", "bridge")
	l.ip("-n", s.Switch, "link", "set", "br0", "up")
	return s
}

// allocate reserves the next host address and bridge port name.
func (s *Segment) allocate() (netip.Addr, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.next
	if !s.Prefix.Contains(a) || a.As4()[3] == 255 {
		return netip.Addr{}, "", fmt.Errorf("segment %v is full", s.Prefix)
	}
	s.next = a.Next()
	s.ports++
	return a, fmt.Sprintf("p%d", s.ports), nil
}

// Node is a network namespace with an interface on a segment.
type Node struct {
	lab *Lab
	// Name is the name given to NewNode; it labels logs.
	Name string
	// NS is the namespace name (wft-<lab id>-<name>).
	NS string
	// Addr is the node's address on the segment it was created on.
	Addr netip.Addr
	// Segment is the segment it was created on.
	Segment *Segment

	mu sync.Mutex
	// Fields below are guarded by mu.
	ifaces     int                 // ethN interfaces attached
	udpBlocked map[netip.Addr]bool // BlockUDP state; nil until its table exists
}

// validNodeName accepts 1-16 of [a-z0-9-], not starting with '-': short
// enough for the namespace name and safe in file names.
func validNodeName(name string) bool {
	if len(name) == 0 || len(name) > 16 || name[0] == '-' {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// NewNode creates a namespace with loopback up and interface eth0 on seg at
// the segment's next address. Its default route goes to the segment's
// Gateway, or out of eth0 on-link when there is none (so programs see a
// default interface, while packets still cannot leave the lab). IPv6 is off
// on eth0 so no address outside 198.18.0.0/15 and loopback is ever used.
// The namespace gets its own /etc/resolv.conf for `ip netns exec` with no
// name server, so a program that rewrites DNS settings writes that file, not
// the host's.
func (l *Lab) NewNode(name string, seg *Segment) *Node {
	l.t.Helper()
	if !validNodeName(name) {
		l.t.Fatalf("nettest: node name %q: want 1-16 of [a-z0-9-]", name)
	}
	n := &Node{lab: l, Name: name, Segment: seg}
	n.NS = l.newNamespace(name)
	n.Addr = n.Attach(seg)
	route := []string{"-n", n.NS, "route", "add", "default"}
	if seg.Gateway.IsValid() {
		route = append(route, "via", seg.Gateway.String())
	} else {
		route = append(route, "dev", "eth0")
	}
	l.ip(route...)
	return n
}

// Attach adds the next interface (eth0, eth1, ...) to n, plugs it into seg
// and returns its address. The veth pair is created inside seg's switch
// namespace and its peer moved straight into n, never into the host.
func (n *Node) Attach(seg *Segment) netip.Addr {
	l := n.lab
	l.t.Helper()
	addr, port, err := seg.allocate()
	l.must(err)
	n.mu.Lock()
	ifname := fmt.Sprintf("eth%d", n.ifaces)
	n.ifaces++
	n.mu.Unlock()
	l.ip("-n", seg.Switch, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", n.NS)
	l.ip("-n", seg.Switch, "link", "set", port, "master", "br0", "up")
	l.ip("-n", n.NS, "addr", "add", netip.PrefixFrom(addr, seg.Prefix.Bits()).String(), "dev", ifname)
	l.ip("-n", n.NS, "link", "set", ifname, "up")
	return addr
}

// newNamespace creates wft-<id>-<suffix> with loopback up and IPv6 off for
// interfaces created later, and records it for cleanup.
func (l *Lab) newNamespace(suffix string) string {
	l.t.Helper()
	ns := NamePrefix + l.id + "-" + suffix
	// The marker comes first: a namespace without one is never reaped.
	l.must(os.MkdirAll(markerDir, 0o755))
	l.must(os.WriteFile(filepath.Join(markerDir, ns), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644))
	l.must(os.MkdirAll(filepath.Join("/etc/netns", ns), 0o755))
	l.must(os.WriteFile(filepath.Join("/etc/netns", ns, "resolv.conf"),
		[]byte("# weft nettest namespace "+ns+": no name server\n"), 0o644))
	ctx, cancel := context.WithTimeout(context.Background(), labTimeout)
	defer cancel()
	if err := ipCmd(ctx, "netns", "add", ns); err != nil {
		removeMarkers(ns)
		l.t.Fatalf("nettest: %v", err)
	}
	l.mu.Lock()
	l.namespaces = append(l.namespaces, ns)
	l.mu.Unlock()
	l.ip("-n", ns, "link", "set", "lo", "up")
	l.must(inNamespace(ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
	}))
	return ns
}

// Sysctl writes value to /proc/sys/<key> (key uses slashes or dots) inside
// the node's namespace.
func (n *Node) Sysctl(key, value string) error {
	p := filepath.Join("/proc/sys", filepath.FromSlash(dotsToSlashes(key)))
	return inNamespace(n.NS, func() error { return os.WriteFile(p, []byte(value), 0o644) })
}

func dotsToSlashes(key string) string {
	b := []byte(key)
	for i, c := range b {
		if c == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// ip runs one lab-building ip command and fails the test if it fails.
func (l *Lab) ip(args ...string) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), labTimeout)
	defer cancel()
	l.must(ipCmd(ctx, args...))
}

func (l *Lab) must(err error) {
	l.t.Helper()
	if err != nil {
		l.t.Fatalf("nettest: %v", err)
	}
}

// close stops every process, prints log tails if the test failed and deletes
// every namespace. It runs from t.Cleanup, also after a panic or Fatal.
func (l *Lab) close() {
	l.mu.Lock()
	procs := slices.Clone(l.procs)
	namespaces := slices.Clone(l.namespaces)
	l.mu.Unlock()

	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.Stop() })
	}
	wg.Wait()
	if l.t.Failed() || panicking() {
		l.DumpLogs(40)
	}
	for _, ns := range slices.Backward(namespaces) {
		if err := deleteNamespace(ns); err != nil {
			l.t.Errorf("nettest cleanup: %v", err)
		}
	}
}

// panicking reports whether the calling goroutine is unwinding a panic. The
// testing package runs the cleanups of a panicking test before it marks the
// test failed, so t.Failed alone would hide the logs exactly when they
// matter most.
func panicking() bool {
	pcs := make([]uintptr, 128)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if f.Function == "runtime.gopanic" {
			return true
		}
		if !more {
			return false
		}
	}
}

// DumpLogs writes the last lines of every process log of the lab to the test
// log. The lab calls it itself when the test has failed.
func (l *Lab) DumpLogs(lines int) {
	l.mu.Lock()
	procs := slices.Clone(l.procs)
	l.mu.Unlock()
	for _, p := range procs {
		l.t.Logf("---- last %d lines of %s/%s (%s, %s) ----\n%s", lines, p.node.Name, p.Name, p.LogPath, p.state(), p.Tail(lines))
	}
}

// deleteNamespace kills whatever still runs in ns, then deletes it and its
// marker files.
func deleteNamespace(ns string) error {
	ctx, cancel := context.WithTimeout(context.Background(), labTimeout)
	defer cancel()
	killNamespacePids(ctx, ns)
	err := ipCmd(ctx, "netns", "del", ns)
	if _, statErr := os.Stat(filepath.Join("/run/netns", ns)); os.IsNotExist(statErr) {
		err = nil // already gone: the goal is reached
	}
	removeMarkers(ns)
	return err
}

func removeMarkers(ns string) {
	os.Remove(filepath.Join(markerDir, ns))
	os.RemoveAll(filepath.Join("/etc/netns", ns))
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// Lab returns the lab the node belongs to.
func (n *Node) Lab() *Lab { return n.lab }
