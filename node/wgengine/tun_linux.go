//go:build linux

package wgengine

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// kernelTUN is a kernel TUN interface configured through netlink.
type kernelTUN struct {
	log    *slog.Logger
	dev    tun.Device
	name   string
	link   netlink.Link
	addrs  []netip.Prefix
	routes []netip.Prefix
}

func newKernelTUN(name string, mtu int, log *slog.Logger) (*kernelTUN, error) {
	dev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("wgengine: create TUN %q (needs CAP_NET_ADMIN; or use --tun=userspace-networking): %w", name, err)
	}
	real, err := dev.Name()
	if err != nil {
		dev.Close()
		return nil, err
	}
	link, err := netlink.LinkByName(real)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("wgengine: find link %s: %w", real, err)
	}
	if err := netlink.LinkSetMTU(link, mtu); err != nil {
		dev.Close()
		return nil, fmt.Errorf("wgengine: set MTU of %s: %w", real, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		dev.Close()
		return nil, fmt.Errorf("wgengine: bring %s up: %w", real, err)
	}
	return &kernelTUN{log: log, dev: newGROTUN(dev), name: real, link: link}, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// configure makes the interface's addresses and routes equal to addrs and
// routes (default routes are skipped: exit-node routing needs policy
// routing, not done yet). It is best effort per entry, so that one
// failure (typically IPv6 disabled on the host, as tailscaled tolerates)
// does not leave the IPv4 side unconfigured; the errors are returned
// joined, IPv6 ones only logged when IPv6 is off.
func (k *kernelTUN) configure(addrs, routes []netip.Prefix) error {
	var errs []error
	fail := func(p netip.Prefix, err error) {
		if p.Addr().Is6() && ipv6Disabled(err) {
			k.log.Debug("wgengine: IPv6 is disabled here; skipping", "prefix", p, "dev", k.name)
			return
		}
		errs = append(errs, err)
	}
	for _, a := range k.addrs {
		if !slices.Contains(addrs, a) {
			netlink.AddrDel(k.link, &netlink.Addr{IPNet: ipNet(a)})
		}
	}
	var have []netip.Prefix
	for _, a := range addrs {
		if slices.Contains(k.addrs, a) {
			have = append(have, a)
			continue
		}
		if err := netlink.AddrReplace(k.link, &netlink.Addr{IPNet: ipNet(a)}); err != nil {
			fail(a, fmt.Errorf("wgengine: add address %v to %s: %w", a, k.name, err))
			continue
		}
		have = append(have, a)
	}
	k.addrs = have
	var want []netip.Prefix
	for _, r := range routes {
		if r.Bits() == 0 || slices.Contains(want, r.Masked()) {
			continue
		}
		want = append(want, r.Masked())
	}
	for _, r := range k.routes {
		if !slices.Contains(want, r) {
			netlink.RouteDel(&netlink.Route{LinkIndex: k.link.Attrs().Index, Dst: ipNet(r)})
		}
	}
	var routed []netip.Prefix
	for _, r := range want {
		if slices.Contains(k.routes, r) {
			routed = append(routed, r)
			continue
		}
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: k.link.Attrs().Index, Dst: ipNet(r), Scope: netlink.SCOPE_LINK}); err != nil {
			fail(r, fmt.Errorf("wgengine: route %v via %s: %w", r, k.name, err))
			continue
		}
		routed = append(routed, r)
	}
	k.routes = routed
	return errors.Join(errs...)
}

// ipv6Disabled reports whether err is what netlink returns for IPv6
// addresses and routes when IPv6 is disabled on the interface or host.
func ipv6Disabled(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EOPNOTSUPP)
}

// cleanup removes the interface (closing the TUN fd already did for
// non-persistent devices; this is best effort).
func (k *kernelTUN) cleanup() {
	if l, err := netlink.LinkByName(k.name); err == nil {
		netlink.LinkDel(l)
	}
}

// groTUN is a kernel TUN with IFF_VNET_HDR whose Write coalesces TCP
// without re-verifying checksums or copying (tcpgro.go). Batches holding
// UDP go to wireguard-go's Write, which has UDP GRO when the kernel
// supports it. Read splits GSO packets with less CPU than wireguard-go's
// (tunsplit.go).
type groTUN struct {
	tun.Device
	rc syscall.RawConn
	rd *vnetReader

	mu sync.Mutex
	// guarded by mu:
	gro   tcpGRO
	vecs  [][]byte
	iov   []unix.Iovec
	werr  error
	write func(fd uintptr) bool // writes iov; allocated once
}

// newGROTUN wraps dev when it is a kernel TUN that takes virtio headers;
// otherwise it returns dev.
func newGROTUN(dev tun.Device) tun.Device {
	nt, ok := dev.(*tun.NativeTun)
	if !ok {
		return dev
	}
	name, err := nt.Name()
	if err != nil {
		return dev
	}
	// Not File().Fd(): that would switch the descriptor to blocking mode.
	rc, err := nt.File().SyscallConn()
	if err != nil {
		return dev
	}
	vnet := false
	rc.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			return
		}
		if unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr) == nil {
			vnet = ifr.Uint16()&unix.IFF_VNET_HDR != 0
		}
	})
	if !vnet {
		return dev
	}
	t := &groTUN{Device: dev, rc: rc, rd: newVnetReader(nt.File())}
	t.write = func(fd uintptr) bool {
		_, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&t.iov[0])), uintptr(len(t.iov)))
		if e == unix.EAGAIN {
			return false // wait until writable
		}
		t.werr = nil
		if e != 0 {
			t.werr = e
		}
		return true
	}
	return t
}

// Write implements tun.Device.
func (t *groTUN) Write(bufs [][]byte, offset int) (int, error) {
	if offset < vnetHdrLen {
		return 0, fmt.Errorf("wgengine: TUN write offset %d leaves no room for a virtio header", offset)
	}
	for _, b := range bufs {
		if ipProto(b[offset:]) == unix.IPPROTO_UDP {
			return t.Device.Write(bufs, offset)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	runs := t.gro.coalesce(bufs, offset)
	for i := range runs {
		t.vecs = t.gro.iovecs(t.vecs[:0], bufs, offset, &runs[i])
		t.iov = t.iov[:0]
		for _, v := range t.vecs {
			if len(v) == 0 {
				continue
			}
			t.iov = append(t.iov, unix.Iovec{Base: &v[0]})
			t.iov[len(t.iov)-1].SetLen(len(v))
		}
		if err := t.rc.Write(t.write); err != nil {
			return 0, os.ErrClosed // the TUN is closed
		}
		if t.werr != nil {
			if errors.Is(t.werr, unix.EBADFD) {
				return 0, os.ErrClosed
			}
			errs = append(errs, t.werr)
		}
	}
	// Do not keep packet buffers reachable.
	clear(t.vecs[:cap(t.vecs)])
	clear(t.iov[:cap(t.iov)])
	return len(bufs), errors.Join(errs...)
}
