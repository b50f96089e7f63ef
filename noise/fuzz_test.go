package noise

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// FuzzServerHandshake feeds arbitrary initiation bytes to the server. It
// must never panic, must answer every rejected initiation with an error
// message, and may accept only a well-formed, authentic initiation.
func FuzzServerHandshake(f *testing.F) {
	serverKey := fixedKey(1)
	ci, err := startClient(ClientConfig{MachineKey: fixedKey(2), ServerKey: serverKey.Public(), ProtocolVersion: 142}, detRand())
	if err != nil {
		f.Fatal(err)
	}
	valid := ci.Initiation()
	old, err := startClient(ClientConfig{MachineKey: fixedKey(2), ServerKey: serverKey.Public(), ProtocolVersion: 100}, detRand())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(old.Initiation())
	f.Add(valid[:InitiationLen-1])
	f.Add(append(bytes.Clone(valid), 0))
	f.Add(make([]byte, InitiationLen))
	f.Add([]byte{})
	f.Add([]byte{0x00, 0x8e, 0x01, 0x00, 0x60})
	f.Add(append([]byte{0x00, 0x8e, 0x01, 0x00, 0x60}, bytes.Repeat([]byte{0xff}, 96)...))

	cfg := ServerConfig{PrivateKey: serverKey, MinVersion: 113, EarlyPayload: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		if data == nil {
			data = []byte{} // nil means "read the initiation from conn"
		}
		var out bytes.Buffer
		c, err := ServerHandshake(&bufConn{w: &out}, data, cfg)
		if err != nil {
			if c != nil {
				t.Fatal("returned a Conn with an error")
			}
			if out.Len() < headerLen || out.Bytes()[0] != msgTypeError ||
				int(binary.BigEndian.Uint16(out.Bytes()[1:3])) != out.Len()-headerLen {
				t.Fatalf("rejection wrote %x, want one error message", out.Bytes())
			}
			return
		}
		if len(data) != InitiationLen {
			t.Fatalf("accepted a %d-byte initiation", len(data))
		}
		if v := binary.BigEndian.Uint16(data); c.ProtocolVersion() != v || v < cfg.MinVersion {
			t.Fatalf("accepted version %d (header %d)", c.ProtocolVersion(), v)
		}
		if out.Len() <= ResponseLen || out.Bytes()[0] != msgTypeResponse {
			t.Fatalf("success wrote %x, want a response and the early payload", out.Bytes())
		}
	})
}

// FuzzRecordReader feeds arbitrary bytes to a Conn after a real (but
// deterministic, so that seeds decrypt) handshake. Reads must never panic,
// never yield more plaintext than input, and end in an error that repeats.
func FuzzRecordReader(f *testing.F) {
	records := func(writes ...[]byte) []byte {
		p := newMemPair(f, nil)
		for _, w := range writes {
			if w == nil { // an empty record, which Write never produces
				p.client.writeMu.Lock()
				rec, _ := p.client.sealLocked(nil, nil)
				p.client.writeMu.Unlock()
				p.c2s.Write(rec)
				continue
			}
			p.client.Write(w)
		}
		return p.c2s.Bytes()
	}
	one := records([]byte("hello"))
	tampered := bytes.Clone(one)
	tampered[len(tampered)-1] ^= 1
	f.Add([]byte{})
	f.Add(one)
	f.Add(records(nil, []byte("after an empty record")))
	f.Add(records(pattern(MaxPlaintextPerRecord, 1)))
	f.Add(records(pattern(10000, 2)))
	f.Add(append(records([]byte("a"), []byte("b")), 0x04))
	f.Add(tampered)
	f.Add([]byte{msgTypeRecord, 0x0f, 0xfe})
	f.Add([]byte{msgTypeRecord, 0x00, 0x0f})
	f.Add([]byte{msgTypeError, 0x00, 0x02, 'h', 'i'})
	f.Add(one[:len(one)-3])

	base := newMemPair(f, nil)
	// The seeds are only useful if they decrypt under base's keys.
	check := &Conn{conn: &bufConn{r: bytes.NewReader(one)}, rx: cipherState{aead: base.server.rx.aead}}
	if got, err := io.ReadAll(check); err != nil || string(got) != "hello" {
		f.Fatalf("seed does not decrypt under the fuzz keys: %q, %v", got, err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Conn{conn: &bufConn{r: bytes.NewReader(data)}, rx: cipherState{aead: base.server.rx.aead}}
		total := 0
		buf := make([]byte, 5000)
		var err error
		for err == nil {
			var n int
			n, err = c.Read(buf)
			total += n
		}
		if total > len(data) {
			t.Fatalf("read %d plaintext bytes from %d input bytes", total, len(data))
		}
		if _, err2 := c.Read(buf); err2 == nil {
			t.Fatalf("Read succeeded after error %v", err)
		}
	})
}
