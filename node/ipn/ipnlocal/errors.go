package ipnlocal

import "errors"

var (
	errSlowWatcher = errors.New("watch: too slow reading notifications; reconnect")
	// ErrNoProfile is returned for an unknown profile.
	ErrNoProfile = errors.New("no such profile")
	// ErrLoginServerChange is the same refusal as tailscale's.
	ErrLoginServerChange = errors.New("can't change --login-server without --force-reauth")
	// ErrNotRunning is returned by calls that need a Running backend.
	ErrNotRunning = errors.New("not running: bring weft up first (weft up)")
)
