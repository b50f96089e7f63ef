package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"weft.dev/weft/control/state"
)

// policyFile keeps the policy in step with --policy-file: loaded at start
// (a bad file stops the server), then polled; an edit that does not parse
// or whose tests fail is logged and the previous policy stays.
type policyFile struct {
	path string
	st   *state.State
	log  *slog.Logger

	// Touched only by load and then by the single run goroutine.
	modTime time.Time
	size    int64
}

// load reads and applies the file if it changed since the last load;
// startup is set for the load before the batcher starts.
func (p *policyFile) load(ctx context.Context, startup bool) error {
	fi, err := os.Stat(p.path)
	if err != nil {
		return fmt.Errorf("--policy-file: %w", err)
	}
	if fi.ModTime().Equal(p.modTime) && fi.Size() == p.size {
		return nil
	}
	data, err := os.ReadFile(p.path)
	if err != nil {
		return fmt.Errorf("--policy-file: %w", err)
	}
	p.modTime, p.size = fi.ModTime(), fi.Size()
	_, err = p.st.SetPolicy(ctx, data, state.PolicyOrigin{File: p.path, Startup: startup})
	if err != nil && !errors.Is(err, state.ErrPolicyUnchanged) {
		return fmt.Errorf("--policy-file %s:\n%w", p.path, err)
	}
	return nil
}

// run polls the file every interval until ctx ends.
func (p *policyFile) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.load(ctx, false); err != nil {
				p.log.Error("policy file not applied; the previous policy stays in force", "err", err)
			}
		}
	}
}
