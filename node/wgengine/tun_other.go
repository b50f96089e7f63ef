//go:build !linux

package wgengine

import (
	"errors"
	"log/slog"
	"net/netip"

	"golang.zx2c4.com/wireguard/tun"
)

type kernelTUN struct{ dev tun.Device }

func newKernelTUN(string, int, *slog.Logger) (*kernelTUN, error) {
	return nil, errors.New("wgengine: kernel TUN is only implemented on Linux; use --tun=userspace-networking")
}

func (k *kernelTUN) configure(addrs, routes []netip.Prefix) error { return nil }
func (k *kernelTUN) cleanup()                                     {}
