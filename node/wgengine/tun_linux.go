//go:build linux

package wgengine

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

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
	return &kernelTUN{log: log, dev: dev, name: real, link: link}, nil
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
