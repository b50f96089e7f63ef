package localapi

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Creds are the credentials of the process at the other end of a LocalAPI
// connection.
type Creds struct {
	// Known is false when the connection gave no credentials (not a unix
	// socket); such callers may only read.
	Known bool
	UID   int
	GID   int
	PID   int
}

// PeerCredsFunc returns the credentials of a connection's peer. The
// default is PeerCreds; tests inject their own to play other users.
type PeerCredsFunc func(net.Conn) (Creds, error)

// PeerCreds reads SO_PEERCRED from a unix socket connection.
func PeerCreds(c net.Conn) (Creds, error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Creds{}, nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Creds{}, err
	}
	var cred *unix.Ucred
	var serr error
	err = raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return Creds{}, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	if cred == nil {
		return Creds{}, errors.New("SO_PEERCRED: no credentials")
	}
	return Creds{Known: true, UID: int(cred.Uid), GID: int(cred.Gid), PID: int(cred.Pid)}, nil
}
