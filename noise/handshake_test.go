package noise

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/wire/key"
)

// pipeHandshake runs ClientHandshake and ServerHandshake over net.Pipe.
func pipeHandshake(t *testing.T, ccfg ClientConfig, scfg ServerConfig) (client, server *Conn, clientErr, serverErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, s := net.Pipe()
	t.Cleanup(func() { c.Close(); s.Close() })
	type result struct {
		c   *Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		sc, err := ServerHandshake(s, nil, scfg)
		if err != nil {
			s.Close() // as AcceptHTTP does; ends a client still waiting
		}
		done <- result{sc, err}
	}()
	client, clientErr = ClientHandshake(ctx, c, ccfg)
	r := <-done
	return client, r.c, clientErr, r.err
}

func TestHandshake(t *testing.T) {
	serverKey, machineKey := key.NewMachine(), key.NewMachine()
	good := ClientConfig{MachineKey: machineKey, ServerKey: serverKey.Public(), ProtocolVersion: 142}
	tests := []struct {
		name          string
		client        ClientConfig
		server        ServerConfig
		wantClientErr string // substring; "" means success
		wantServerErr string
	}{
		{name: "ok", client: good, server: ServerConfig{PrivateKey: serverKey}},
		{name: "ok at min version", client: good, server: ServerConfig{PrivateKey: serverKey, MinVersion: 142}},
		{
			name:          "too old",
			client:        ClientConfig{MachineKey: machineKey, ServerKey: serverKey.Public(), ProtocolVersion: 100},
			server:        ServerConfig{PrivateKey: serverKey, MinVersion: 113},
			wantClientErr: `server error: "client too old: capability version 100 < 113; upgrade Tailscale"`,
			wantServerErr: "capability version 100 below minimum 113",
		},
		{
			name:          "stale server key",
			client:        ClientConfig{MachineKey: machineKey, ServerKey: key.NewMachine().Public(), ProtocolVersion: 142},
			server:        ServerConfig{PrivateKey: serverKey},
			wantClientErr: `server error: "noise handshake failed`,
			wantServerErr: "decrypt client machine key",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server, cerr, serr := pipeHandshake(t, tt.client, tt.server)
			checkErr(t, "client", cerr, tt.wantClientErr)
			checkErr(t, "server", serr, tt.wantServerErr)
			if tt.wantClientErr != "" {
				var se *ServerError
				if !errors.As(cerr, &se) {
					t.Errorf("client error %v is not a *ServerError", cerr)
				}
				return
			}
			type view struct {
				Peer    string
				Version uint16
			}
			if diff := cmp.Diff(view{machineKey.Public().String(), 142}, view{server.PeerMachineKey().String(), server.ProtocolVersion()}); diff != "" {
				t.Errorf("server view (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(view{serverKey.Public().String(), 142}, view{client.PeerMachineKey().String(), client.ProtocolVersion()}); diff != "" {
				t.Errorf("client view (-want +got):\n%s", diff)
			}
			if client.HandshakeHash() != server.HandshakeHash() {
				t.Errorf("handshake hashes differ: %x vs %x", client.HandshakeHash(), server.HandshakeHash())
			}
			roundTrip(t, client, server, []int{0, 1, 4077, 4078, 50000})
			roundTrip(t, server, client, []int{0, 1, 4077, 4078, 50000})
		})
	}
}

func checkErr(t *testing.T, who string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("%s: unexpected error: %v", who, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("%s: error = %v, want one containing %q", who, err, want)
	}
}

// roundTrip writes each size on w and checks r reads exactly those bytes.
func roundTrip(t *testing.T, w, r net.Conn, sizes []int) {
	t.Helper()
	for i, n := range sizes {
		want := pattern(n, i)
		errc := make(chan error, 1)
		go func() { _, err := w.Write(want); errc <- err }()
		got := make([]byte, n)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("size %d: read: %v", n, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("size %d: write: %v", n, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: read bytes differ from written", n)
		}
	}
}

func TestStartClientRejectsZeroKeys(t *testing.T) {
	if _, err := StartClient(ClientConfig{ServerKey: key.NewMachine().Public()}); err == nil {
		t.Error("zero machine key accepted")
	}
	if _, err := StartClient(ClientConfig{MachineKey: key.NewMachine()}); err == nil {
		t.Error("zero server key accepted")
	}
}

func TestInitiationLayout(t *testing.T) {
	ci, err := StartClient(ClientConfig{MachineKey: key.NewMachine(), ServerKey: key.NewMachine().Public(), ProtocolVersion: 142})
	if err != nil {
		t.Fatal(err)
	}
	msg := ci.Initiation()
	// control.md §2.2: for capver 142 the initiation starts 00 8E 01 00 60.
	if diff := cmp.Diff([]byte{0x00, 0x8e, 0x01, 0x00, 0x60}, msg[:5]); len(msg) != InitiationLen || diff != "" {
		t.Errorf("initiation len %d, header (-want +got):\n%s", len(msg), diff)
	}
}

func TestServerRejectsMalformedInitiation(t *testing.T) {
	serverKey := key.NewMachine()
	ci, err := StartClient(ClientConfig{MachineKey: key.NewMachine(), ServerKey: serverKey.Public(), ProtocolVersion: 142})
	if err != nil {
		t.Fatal(err)
	}
	valid := ci.Initiation()
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	tests := []struct {
		name string
		msg  []byte
		want string
	}{
		{"short", valid[:100], "initiation is 100 bytes"},
		{"long", append(bytes.Clone(valid), 0), "initiation is 102 bytes"},
		{"type", mut(func(b []byte) []byte { b[2] = 2; return b }), "message type 0x02"},
		{"length", mut(func(b []byte) []byte { b[4] = 0x61; return b }), "announces 97 payload bytes"},
		{"tag", mut(func(b []byte) []byte { b[100] ^= 1; return b }), "does not authenticate"},
		{"low order ephemeral", mut(func(b []byte) []byte { clear(b[5:37]); return b }), "low-order"},
		// The version is bound through the prologue, so a changed header breaks the handshake.
		{"version", mut(func(b []byte) []byte { b[1]++; return b }), "decrypt client machine key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := ServerHandshake(&bufConn{w: &out}, tt.msg, ServerConfig{PrivateKey: serverKey})
			checkErr(t, "server", err, tt.want)
			if out.Len() < 3 || out.Bytes()[0] != msgTypeError {
				t.Errorf("server wrote %x, want an error message", out.Bytes())
			}
		})
	}
}
