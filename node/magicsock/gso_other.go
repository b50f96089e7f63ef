//go:build !linux

package magicsock

const gsoAvailable = false

func gsoControl(size int) []byte { return nil }

func gsoRefused(err error) bool { return false }
