//go:build linux

package magicsock

import (
	"encoding/binary"
	"errors"
	"net"
	"unsafe"

	"golang.org/x/sys/unix"
)

// gsoAvailable says whether UDP generic segmentation offload may be tried
// (Linux ≥ 4.18; a kernel or device that refuses it answers EIO, and the
// socket falls back to one datagram per packet).
const gsoAvailable = true

// gsoControl is the UDP_SEGMENT control message asking the kernel to cut
// one send into datagrams of size bytes (the last may be shorter).
func gsoControl(size int) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(size))
	return b
}

// gsoRefused reports whether a send failed because the kernel or the
// outgoing device cannot segment (wireguard-go's errShouldDisableUDPGSO).
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOPROTOOPT)
}

// groAvailable says whether UDP generic receive offload may be tried.
const groAvailable = true

// groControlSpace is the receive control buffer for one UDP_GRO message.
func groControlSpace() int { return unix.CmsgSpace(4) }

// enableGRO asks the kernel to hand the socket runs of datagrams from one
// source as one buffer, with their size in a UDP_GRO control message
// (Linux ≥ 5.0): a GSO send from the peer then crosses the receive path
// unsplit. It reports whether the option took.
func enableGRO(uc *net.UDPConn) bool {
	rc, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	rc.Control(func(fd uintptr) {
		ok = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	})
	return ok
}

// groSize returns the segment size of a coalesced read from its control
// messages, or 0 when the read is one datagram.
func groSize(oob []byte) int {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO {
			switch {
			case len(data) >= 4:
				return int(binary.NativeEndian.Uint32(data))
			case len(data) >= 2:
				return int(binary.NativeEndian.Uint16(data))
			}
		}
		oob = rest
	}
	return 0
}
