package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"weft.dev/weft/relay/derpclient"
	"weft.dev/weft/wire/derp"
	"weft.dev/weft/wire/key"
)

func main() {
	var (
		derperBin = flag.String("derper", "/tmp/tsbin/derper", "official derper v1.102.5 binary")
		weftBin   = flag.String("weft-derp", "", "weft-derp binary (default: go build ./cmd/weft-derp)")
		clients   = flag.Int("clients", 1000, "clients in the mesh scenario")
		size      = flag.Int("size", 1200, "packet payload bytes")
		duration  = flag.Duration("duration", 5*time.Second, "measurement time per scenario")
	)
	flag.Parse()
	if err := run(*derperBin, *weftBin, *clients, *size, *duration); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(derperBin, weftBin string, clients, size int, d time.Duration) error {
	if _, err := os.Stat(derperBin); err != nil {
		return fmt.Errorf("%w\ninstall it: GOBIN=%s go install tailscale.com/cmd/derper@v1.102.5", err, filepath.Dir(derperBin))
	}
	dir, err := os.MkdirTemp("", "derp-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if weftBin == "" {
		weftBin = filepath.Join(dir, "weft-derp")
		out, err := exec.Command("go", "build", "-o", weftBin, "weft.dev/weft/cmd/weft-derp").CombinedOutput()
		if err != nil {
			return fmt.Errorf("build weft-derp: %v\n%s", err, out)
		}
	}
	type result struct{ single, mesh rate }
	results := map[string]result{}
	for _, r := range []struct{ name, bin string }{{"derper", derperBin}, {"weft-derp", weftBin}} {
		url, stop, err := startRelay(r.bin, dir, r.name)
		if err != nil {
			return err
		}
		single, err := measure(url, 2, size, d)
		if err == nil {
			var mesh rate
			mesh, err = measure(url, clients, size, d)
			results[r.name] = result{single, mesh}
		}
		stop()
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		fmt.Printf("%-9s single flow: %10.0f pkt/s (%5.2f%% lost)   %d clients: %10.0f pkt/s (%5.2f%% lost)\n",
			r.name, results[r.name].single.pps, results[r.name].single.lost*100, clients,
			results[r.name].mesh.pps, results[r.name].mesh.lost*100)
	}
	o, w := results["derper"], results["weft-derp"]
	fmt.Printf("ratio weft/derper: single flow %.2fx, %d clients %.2fx\n", w.single.pps/o.single.pps, clients, w.mesh.pps/o.mesh.pps)
	return nil
}

// startRelay runs a relay binary with derper flags on a free loopback port
// (plain HTTP: a non-443 port without -certmode=manual).
func startRelay(bin, dir, name string) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "-a", addr, "-stun=false", "-http-port", "-1", "-c", filepath.Join(dir, name+".key"))
	logf, _ := os.Create(filepath.Join(dir, name+".log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	}
	for deadline := time.Now().Add(15 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("%s did not start (log in %s)", bin, logf.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "http://" + addr + "/derp", stop, nil
}

type rate struct {
	pps  float64 // delivered packets per second
	lost float64 // fraction of sent packets not delivered
}

// measure connects n clients. With n == 2 it is one flow, flat out:
// client 0 sends to client 1 as fast as Send returns. With more clients they
// form pairs that ping-pong with a window of outstanding packets per pair
// (closed loop), so the relay, not the client process, is the bottleneck and
// overload does not turn into disconnects. Deliveries are counted over d
// after a one-second warm-up.
func measure(url string, n, size int, d time.Duration) (rate, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d+time.Minute)
	defer cancel()
	cs := make([]*derpclient.Client, n)
	for i := range cs {
		c, err := derpclient.Dial(ctx, url, key.NewNode())
		if err != nil {
			return rate{}, fmt.Errorf("client %d: %w", i, err)
		}
		cs[i] = c
	}
	var sent, recv atomic.Int64
	var measuring atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	send := func(c *derpclient.Client, dst key.NodePublic, pkt []byte) bool {
		if c.Send(dst, pkt) != nil {
			return false
		}
		if measuring.Load() {
			sent.Add(1)
		}
		return true
	}
	const window = 16
	for i, c := range cs {
		peer := cs[i^1]
		if i^1 >= n {
			peer = cs[0]
		}
		initiator := i%2 == 0
		progress := new(atomic.Int64)
		wg.Add(1)
		go func() { // receiver: count, and echo (responder) or refill (initiator)
			defer wg.Done()
			for {
				m, err := c.Recv()
				if err != nil {
					return
				}
				if m.Type != derp.FrameRecvPacket {
					continue
				}
				if measuring.Load() {
					recv.Add(1)
				}
				progress.Add(1)
				if n == 2 && !initiator {
					continue // single flow: client 1 only receives
				}
				if !send(c, peer.PublicKey(), m.Packet) {
					return
				}
			}
		}()
		if !initiator {
			continue
		}
		wg.Add(1)
		go func() { // initiator: fill the window, refill it if packets were lost
			defer wg.Done()
			pkt := make([]byte, size)
			if n == 2 {
				for seq := uint64(0); ; seq++ {
					select {
					case <-stop:
						return
					default:
					}
					binary.BigEndian.PutUint64(pkt, seq)
					if !send(c, peer.PublicKey(), pkt) {
						return
					}
				}
			}
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			last := int64(-1)
			for {
				if p := progress.Load(); p == last {
					for range window {
						if !send(c, peer.PublicKey(), pkt) {
							return
						}
					}
				} else {
					last = p
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
	}
	time.Sleep(time.Second)
	measuring.Store(true)
	start := time.Now()
	time.Sleep(d)
	measuring.Store(false)
	elapsed := time.Since(start)
	got, put := recv.Load(), sent.Load()
	close(stop)
	for _, c := range cs {
		c.Close()
	}
	wg.Wait()
	lost := 0.0
	if put > got {
		lost = float64(put-got) / float64(put)
	}
	return rate{pps: float64(got) / elapsed.Seconds(), lost: lost}, nil
}
