package api

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"weft.dev/weft/control/controltest"
	"weft.dev/weft/wire/ctrl"
)

// TestConcurrentJoinsAllGetDeltas registers nodes concurrently and checks
// that every stream then receives a later endpoint change.
func TestConcurrentJoinsAllGetDeltas(t *testing.T) {
	r := newRig(t)
	const n = 24
	clients := make([]*controltest.Client, n)
	streams := make([]*controltest.Stream, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := controltest.Dial(context.Background(), r.url, nil)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { c.Close() })
			hi := &ctrl.Hostinfo{Hostname: "n"}
			if res, err := c.Register(context.Background(), ctrl.RegisterRequest{Auth: &ctrl.RegisterResponseAuth{AuthKey: r.authK}, Hostinfo: hi}); err != nil || res.Error != "" {
				t.Errorf("register: %v %+v", err, res)
				return
			}
			if err := c.LiteUpdate(context.Background(), ctrl.MapRequest{Hostinfo: hi}); err != nil {
				t.Error(err)
				return
			}
			s, err := c.Stream(context.Background(), ctrl.MapRequest{Hostinfo: hi})
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { s.Close() })
			if _, err := s.Next(); err != nil {
				t.Error(err)
				return
			}
			go func() {
				for {
					if _, err := s.Next(); err != nil {
						return
					}
				}
			}()
			clients[i], streams[i] = c, s
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	ep := netip.MustParseAddrPort("198.18.9.9:9999")
	if err := clients[0].LiteUpdate(context.Background(), ctrl.MapRequest{Endpoints: []netip.AddrPort{ep}, Hostinfo: &ctrl.Hostinfo{Hostname: "n"}}); err != nil {
		t.Fatal(err)
	}
	id := streams[0].Self().ID
	for i := 1; i < n; i++ {
		s := streams[i]
		waitFor(t, "endpoint patch on every stream", func() bool {
			p := s.Peer(id)
			return p != nil && len(p.Endpoints) == 1 && p.Endpoints[0] == ep
		})
	}
}
