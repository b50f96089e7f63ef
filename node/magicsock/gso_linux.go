//go:build linux

package magicsock

import (
	"encoding/binary"
	"errors"
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
