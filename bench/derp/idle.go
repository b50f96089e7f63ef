package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/key"
)

// idleRSS connects n logged-in clients that then stay idle and returns the
// relay's resident memory with them connected, minus its RSS before they
// came, in MiB, with the total.
func idleRSS(r *relayProc, n int) (perConnKiB, totalMiB float64, err error) {
	before, err := rss(r.pid)
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clients := make([]*derpclient.Client, n)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	var (
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int)
	var done sync.WaitGroup
	for range 32 {
		done.Go(func() {
			for i := range next {
				c, err := derpclient.Dial(ctx, r.url, key.NewNode())
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("client %d: %w", i, err)
				}
				clients[i] = c
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	done.Wait()
	if firstErr != nil {
		return 0, 0, firstErr
	}
	// Let the relay settle (writer buffers returned, GC run) before reading.
	time.Sleep(3 * time.Second)
	after, err := rss(r.pid)
	if err != nil {
		return 0, 0, err
	}
	return float64(after-before) / float64(n), float64(after) / 1024, nil
}

// rss reads VmRSS of pid in KiB.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}
