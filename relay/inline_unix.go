//go:build unix

package relay

import (
	"errors"

	"golang.org/x/sys/unix"
)

// rawWrite is one non-blocking write(2) to a socket in non-blocking mode.
func rawWrite(fd uintptr, p []byte) (int, error) { return unix.Write(int(fd), p) }

// wouldBlock reports whether err from rawWrite only means "not now".
func wouldBlock(err error) bool { return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) }
