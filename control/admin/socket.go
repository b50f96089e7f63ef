package admin

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// SocketName is the admin socket's file name inside the state directory.
const SocketName = "weft-control.sock"

// SocketPath returns the admin socket path for a state directory.
func SocketPath(stateDir string) string { return filepath.Join(stateDir, SocketName) }

// maxSocketPath is the longest unix socket path Linux accepts (sun_path
// holds 108 bytes including the terminating NUL).
const maxSocketPath = 107

// ListenUnix listens on the admin socket of stateDir with mode 0600. A stale
// socket file left by a crashed server is removed; a live one (another
// weft-control using the same state directory) is an error. The socket file
// is removed when the listener is closed.
func ListenUnix(stateDir string) (net.Listener, error) {
	path := SocketPath(stateDir)
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("admin socket path %s is longer than %d bytes: use a shorter --state-dir", path, maxSocketPath)
	}
	if _, err := os.Lstat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("another weft-control is already serving %s: stop it, or use another --state-dir", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale admin socket: %w", err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on admin socket: %w", err)
	}
	// Between bind and chmod the socket has the umask's mode, which is
	// why the state directory should be 0700; changing the process umask
	// instead would race with every other goroutine creating files.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restrict admin socket: %w", err)
	}
	return ln, nil
}
