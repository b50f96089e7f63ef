package ipn

import "weft.dev/weft/node/netmap"

// Notify is one message on the backend's bus, streamed to `debug watch-ipn`
// and used by `up` to follow login (ipn.Notify upstream; nil fields are
// "no news").
type Notify struct {
	// Version is the daemon version; set on the first message of a watch.
	Version string `json:",omitempty"`
	// ErrMessage is an error the user should see (e.g. a refused auth key).
	ErrMessage *string `json:",omitempty"`
	// LoginFinished is set once a login succeeds.
	LoginFinished *struct{} `json:",omitempty"`
	// State is the new backend state.
	State *State `json:",omitempty"`
	// Prefs are the new preferences.
	Prefs *Prefs `json:",omitempty"`
	// NetMap is the new network map (only with NotifyWatchNetMap).
	NetMap *netmap.NetworkMap `json:",omitempty"`
	// BrowseToURL is a URL the user must visit to log in.
	BrowseToURL *string `json:",omitempty"`
	// Health lists the current problems when they change.
	Health []string `json:",omitempty"`
}

// NotifyWatchOpt selects what a watcher receives (ipn.NotifyWatchOpt bits).
type NotifyWatchOpt uint64

// Watch options; the numbers are upstream's.
const (
	// NotifyWatchEngineUpdates is accepted for compatibility and ignored.
	NotifyWatchEngineUpdates NotifyWatchOpt = 1 << 0
	// NotifyInitialState sends State, Prefs and a pending BrowseToURL first.
	NotifyInitialState NotifyWatchOpt = 1 << 1
	// NotifyInitialPrefs sends Prefs first.
	NotifyInitialPrefs NotifyWatchOpt = 1 << 2
	// NotifyInitialNetMap sends the current netmap first.
	NotifyInitialNetMap NotifyWatchOpt = 1 << 3
	// NotifyNoPrivateKeys is implied: weft never sends private keys.
	NotifyNoPrivateKeys NotifyWatchOpt = 1 << 4
	// NotifyWatchNetMap includes every new netmap (large).
	NotifyWatchNetMap NotifyWatchOpt = 1 << 13
)
