//go:build !unix

package relay

import "errors"

// errNoRawWrite: off unix the inline path takes nothing itself, so every
// batch is handed to the destination's writer goroutine as before.
var errNoRawWrite = errors.New("relay: no raw socket writes on this platform")

func rawWrite(uintptr, []byte) (int, error) { return 0, errNoRawWrite }

func wouldBlock(err error) bool { return errors.Is(err, errNoRawWrite) }
