//go:build linux

package wgengine

import (
	"errors"
	"os"
	"sync"
	"syscall"
)

// vnetReader reads a TUN with IFF_VNET_HDR in place of wireguard-go's
// NativeTun.Read, splitting GSO packets with splitVirtio (tunsplit.go).
type vnetReader struct {
	file *os.File // the TUN; non-blocking, so Read parks in the netpoller

	mu sync.Mutex
	// guarded by mu:
	buf []byte // one virtio header and one IP packet
}

func newVnetReader(file *os.File) *vnetReader {
	return &vnetReader{file: file, buf: make([]byte, vnetHdrLen+maxVnetPacketLen)}
}

// read reads one packet and splits it into bufs, like NativeTun.Read.
func (r *vnetReader) read(bufs [][]byte, sizes []int, offset int) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.file.Read(r.buf)
	if errors.Is(err, syscall.EBADFD) {
		err = os.ErrClosed
	}
	if err != nil {
		return 0, err
	}
	return splitVirtio(r.buf[:n], bufs, sizes, offset)
}

// Read implements tun.Device.
func (t *groTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return t.rd.read(bufs, sizes, offset)
}
