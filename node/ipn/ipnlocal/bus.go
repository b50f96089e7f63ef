package ipnlocal

import (
	"context"

	"weft.dev/weft/node/ipn"
)

// watcherQueue is how many notifications a slow watcher may lag behind
// before it is dropped (its Watch call returns an error).
const watcherQueue = 128

type watcher struct {
	ch      chan *ipn.Notify
	mask    ipn.NotifyWatchOpt
	dropped bool
}

// sendLocked queues n for every watcher; a watcher whose queue is full is
// dropped rather than blocking the backend.
func (b *Backend) sendLocked(n *ipn.Notify) {
	for id, w := range b.watchers {
		m := n
		if n.NetMap != nil && w.mask&ipn.NotifyWatchNetMap == 0 {
			c := *n
			c.NetMap = nil
			if c.State == nil && c.Prefs == nil && c.BrowseToURL == nil && c.ErrMessage == nil && c.LoginFinished == nil && c.Health == nil {
				continue
			}
			m = &c
		}
		select {
		case w.ch <- m:
		default:
			w.dropped = true
			close(w.ch)
			delete(b.watchers, id)
		}
	}
}

// Watch calls fn with every notification until fn returns false, ctx ends,
// or the watcher falls too far behind. mask selects initial messages and
// whether netmaps are included.
func (b *Backend) Watch(ctx context.Context, mask ipn.NotifyWatchOpt, fn func(*ipn.Notify) bool) error {
	w := &watcher{ch: make(chan *ipn.Notify, watcherQueue), mask: mask}
	b.mu.Lock()
	id := b.nextWatcher
	b.nextWatcher++
	b.watchers[id] = w
	first := &ipn.Notify{Version: b.opts.Version}
	if mask&ipn.NotifyInitialState != 0 {
		st := b.state
		first.State = &st
		if b.authURL != "" && st == ipn.NeedsLogin {
			u := b.authURL
			first.BrowseToURL = &u
		}
		if b.lastLoginErr != "" {
			e := b.lastLoginErr
			first.ErrMessage = &e
		}
	}
	if mask&(ipn.NotifyInitialState|ipn.NotifyInitialPrefs) != 0 {
		p := b.profile.Prefs.Clone()
		first.Prefs = &p
	}
	if mask&ipn.NotifyInitialNetMap != 0 && b.nm != nil {
		first.NetMap = b.nm
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if !w.dropped {
			delete(b.watchers, id)
		}
		b.mu.Unlock()
	}()
	if !fn(first) {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case n, ok := <-w.ch:
			if !ok {
				return errSlowWatcher
			}
			if !fn(n) {
				return nil
			}
		}
	}
}
