package api

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"weft.dev/weft/noise"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

// TestHostileConnectionsHarmNoOneElse throws garbage at /ts2021 and at a
// Noise connection (bad handshake, oversize record, random bytes after the
// handshake, oversize request body) and checks that each is refused or cut
// off while an established node keeps receiving map updates.
func TestHostileConnectionsHarmNoOneElse(t *testing.T) {
	r := newRig(t)
	good := r.client("good")
	gs := r.stream(good)
	addr := strings.TrimPrefix(r.url, "http://")

	rawUpgrade := func(hs string) (net.Conn, *bufio.Reader, int) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST /ts2021 HTTP/1.1\r\nHost: x\r\nUpgrade: tailscale-control-protocol\r\nConnection: upgrade\r\nX-Tailscale-Handshake: %s\r\nContent-Length: 0\r\n\r\n", hs)
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c, br, res.StatusCode
	}
	// A malformed handshake header is a 400.
	if c, _, code := rawUpgrade(base64.StdEncoding.EncodeToString([]byte("garbage"))); code != 400 {
		t.Errorf("garbage handshake: status %d, want 400", code)
	} else {
		c.Close()
	}

	// A valid handshake followed by an oversize record header and then by
	// random bytes: the server must drop that connection.
	for _, junk := range [][]byte{{0x04, 0xff, 0xff}, []byte("GET / HTTP/1.1\r\n\r\nthis is not noise at all")} {
		sk, err := noise.GetServerKey(context.Background(), http.DefaultClient, r.url, 142)
		if err != nil {
			t.Fatal(err)
		}
		ci, err := noise.StartClient(noise.ClientConfig{MachineKey: key.NewMachine(), ServerKey: sk, ProtocolVersion: 142})
		if err != nil {
			t.Fatal(err)
		}
		c, br, code := rawUpgrade(base64.StdEncoding.EncodeToString(ci.Initiation()))
		if code != 101 {
			t.Fatalf("upgrade status %d", code)
		}
		if _, err := io.ReadFull(br, make([]byte, noise.ResponseLen)); err != nil {
			t.Fatal(err)
		}
		c.Write(junk)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("junk %q: connection not closed by the server: %v", junk, err)
		}
		c.Close()
	}

	// An oversize register body gets a 4xx on its own stream only.
	big := strings.Repeat("x", 2<<20)
	if _, err := good.Register(context.Background(), ctrl.RegisterRequest{Followup: big}); err == nil || !strings.Contains(err.Error(), "http 4") {
		t.Errorf("oversize register body: %v", err)
	}

	// The good node still gets deltas.
	late := r.client("late")
	r.stream(late)
	waitFor(t, "good node sees the late one", func() bool { return gs.NumPeers() == 1 })
}
