//go:build !linux

package magicsock

import "net"

const gsoAvailable = false

func gsoControl(size int) []byte { return nil }

func gsoRefused(err error) bool { return false }

const groAvailable = false

func groControlSpace() int { return 0 }

func enableGRO(*net.UDPConn) bool { return false }

func groSize([]byte) int { return 0 }
