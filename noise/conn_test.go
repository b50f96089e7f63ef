package noise

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recordSizes splits a captured stream into record ciphertext lengths,
// checking every header on the way.
func recordSizes(t *testing.T, b []byte) []int {
	t.Helper()
	var sizes []int
	for len(b) > 0 {
		if len(b) < headerLen || b[0] != msgTypeRecord {
			t.Fatalf("bad record header %x", b[:min(len(b), headerLen)])
		}
		n := int(binary.BigEndian.Uint16(b[1:3]))
		if headerLen+n > maxRecordLen || len(b) < headerLen+n {
			t.Fatalf("record of %d bytes (have %d)", n, len(b)-headerLen)
		}
		sizes = append(sizes, n-tagLen)
		b = b[headerLen+n:]
	}
	return sizes
}

func TestWriteSplitsRecords(t *testing.T) {
	const max = MaxPlaintextPerRecord
	tests := []struct {
		n    int
		want []int // plaintext per record
	}{
		{0, nil},
		{1, []int{1}},
		{max, []int{max}},
		{max + 1, []int{max, 1}},
		{3*max + 5, []int{max, max, max, 5}},
	}
	for _, tt := range tests {
		p := newMemPair(t, nil)
		data := pattern(tt.n, 3)
		if n, err := p.client.Write(data); n != tt.n || err != nil {
			t.Fatalf("Write(%d) = %d, %v", tt.n, n, err)
		}
		if diff := cmp.Diff(tt.want, recordSizes(t, p.c2s.Bytes())); diff != "" {
			t.Errorf("Write(%d) records (-want +got):\n%s", tt.n, diff)
		}
		got, err := io.ReadAll(p.server)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("Write(%d): server read %d bytes, err %v; want the written bytes", tt.n, len(got), err)
		}
	}
}

func TestReadSmallBuffers(t *testing.T) {
	p := newMemPair(t, nil)
	data := pattern(10000, 1)
	p.server.Write(data)
	var got []byte
	buf := make([]byte, 7)
	for {
		n, err := p.client.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, data) {
		t.Errorf("read %d bytes, want the %d written", len(got), len(data))
	}
}

func TestReadErrors(t *testing.T) {
	// validStream returns two records (empty, then "hello") as the client sends them.
	validStream := func(t *testing.T) (*memPair, []byte) {
		p := newMemPair(t, nil)
		rec, err := p.client.appendRecords(nil, []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		return p, rec
	}
	tests := []struct {
		name   string
		mangle func(rec []byte) []byte
		want   string
		sticky bool
	}{
		{"tampered ciphertext", func(r []byte) []byte { r[5] ^= 0x80; return r }, "decrypt record 0", true},
		{"tampered tag", func(r []byte) []byte { r[len(r)-1] ^= 1; return r }, "decrypt record 0", true},
		{"wrong type", func(r []byte) []byte { r[0] = msgTypeError; return r }, "unexpected message type 0x03", true},
		{"oversize header", func([]byte) []byte { return []byte{msgTypeRecord, 0x0f, 0xfe} }, "announces 4094 bytes", true},
		{"max header", func([]byte) []byte { return []byte{msgTypeRecord, 0xff, 0xff} }, "announces 65535 bytes", true},
		{"shorter than tag", func([]byte) []byte { return append([]byte{msgTypeRecord, 0, 15}, make([]byte, 15)...) }, "shorter than its tag", true},
		{"replayed record", func(r []byte) []byte { return append(r, r...) }, "decrypt record 1", true},
		{"truncated", func(r []byte) []byte { return r[:len(r)-1] }, io.ErrUnexpectedEOF.Error(), false},
		{"truncated header", func(r []byte) []byte { return r[:2] }, io.ErrUnexpectedEOF.Error(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, rec := validStream(t)
			p.c2s.Reset()
			p.c2s.Write(tt.mangle(bytes.Clone(rec)))
			buf := make([]byte, 100)
			var err error
			for err == nil {
				_, err = p.server.Read(buf)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Read error = %v, want one containing %q", err, tt.want)
			}
			// A protocol error is permanent even if valid data follows.
			more, _ := p.client.appendRecords(nil, []byte("more"))
			p.c2s.Write(more)
			_, err2 := p.server.Read(buf)
			if tt.sticky && err2 != err {
				t.Errorf("second Read error = %v, want the same %v", err2, err)
			}
		})
	}
}

func TestReadResumesAfterPartialRecord(t *testing.T) {
	// A record that arrives in pieces (or across a read deadline) is not an error.
	p := newMemPair(t, nil)
	rec, _ := p.client.appendRecords(nil, []byte("split record"))
	r, w := io.Pipe()
	p.server.conn = &bufConn{r: r}
	go func() {
		for _, b := range rec {
			w.Write([]byte{b})
		}
	}()
	got := make([]byte, len("split record"))
	if _, err := io.ReadFull(p.server, got); err != nil || string(got) != "split record" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestNonceIsBigEndian(t *testing.T) {
	// control.md §2.5: nonce = 4 zero bytes ‖ counter, big-endian (unlike stock Noise).
	p := newMemPair(t, nil)
	p.client.Write([]byte("zero"))
	p.client.Write([]byte("one"))
	recs := p.c2s.Bytes()
	second := recs[headerLen+4+tagLen:]
	ct := second[headerLen:]
	var be, le [12]byte
	binary.BigEndian.PutUint64(be[4:], 1)
	binary.LittleEndian.PutUint64(le[4:], 1)
	if got, err := p.server.rx.aead.Open(nil, be[:], ct, nil); err != nil || string(got) != "one" {
		t.Errorf("big-endian nonce 1: %q, %v", got, err)
	}
	if _, err := p.server.rx.aead.Open(nil, le[:], ct, nil); err == nil {
		t.Error("little-endian nonce 1 also opens the record")
	}
}

func TestNonceExhaustion(t *testing.T) {
	p := newMemPair(t, nil)
	p.client.tx.n = math.MaxUint64 - 1
	if _, err := p.client.Write([]byte("last")); err != nil {
		t.Fatalf("write with the last valid nonce: %v", err)
	}
	if _, err := p.client.Write([]byte("one too many")); !errors.Is(err, errCipherExhausted) {
		t.Fatalf("write past the last nonce: %v, want %v", err, errCipherExhausted)
	}
	p.server.rx.n = math.MaxUint64
	if _, err := p.server.Read(make([]byte, 10)); !errors.Is(err, errCipherExhausted) {
		t.Fatalf("read past the last nonce: %v, want %v", err, errCipherExhausted)
	}
}

func TestWriteErrorIsPermanent(t *testing.T) {
	p := newMemPair(t, nil)
	boom := errors.New("boom")
	p.client.conn = &bufConn{w: failWriter{boom}}
	if _, err := p.client.Write([]byte("x")); err != boom {
		t.Fatalf("Write = %v, want %v", err, boom)
	}
	p.client.conn = &bufConn{}
	if _, err := p.client.Write([]byte("y")); err != boom {
		t.Fatalf("Write after failure = %v, want %v", err, boom)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }

func TestConcurrentReadWrite(t *testing.T) {
	client, server, cerr, serr := pipeHandshake(t, ClientConfig{MachineKey: fixedKey(2), ServerKey: fixedKey(1).Public(), ProtocolVersion: 142},
		ServerConfig{PrivateKey: fixedKey(1)})
	if cerr != nil || serr != nil {
		t.Fatal(cerr, serr)
	}
	const writers, per = 4, 20000
	var wg sync.WaitGroup
	// Each side has several concurrent writers and one reader.
	for _, c := range []*Conn{client, server} {
		for i := range writers {
			wg.Go(func() {
				if _, err := c.Write(bytes.Repeat([]byte{byte(i)}, per)); err != nil {
					t.Errorf("write: %v", err)
				}
			})
		}
	}
	counts := make([]map[byte]int, 2)
	for i, c := range []*Conn{client, server} {
		counts[i] = map[byte]int{}
		wg.Go(func() {
			buf := make([]byte, 1000)
			for total := 0; total < writers*per; {
				n, err := c.Read(buf)
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				for _, b := range buf[:n] {
					counts[i][b]++
				}
				total += n
			}
		})
	}
	wg.Wait()
	want := map[byte]int{0: per, 1: per, 2: per, 3: per}
	for i := range counts {
		if diff := cmp.Diff(want, counts[i]); diff != "" {
			t.Errorf("side %d received (-want +got):\n%s", i, diff)
		}
	}
}

func TestEarlyPayloadPeek(t *testing.T) {
	t.Run("present", func(t *testing.T) {
		p := newMemPair(t, nil)
		out, err := p.server.appendEarlyPayload(nil)
		if err != nil {
			t.Fatal(err)
		}
		p.s2c.Write(out)
		p.server.Write([]byte("SETTINGS"))
		if err := p.client.readEarlyPayload(); err != nil {
			t.Fatal(err)
		}
		var en struct{ NodeKeyChallenge string }
		if err := json.Unmarshal(p.client.EarlyPayload(), &en); err != nil || !strings.HasPrefix(en.NodeKeyChallenge, "chalpub:") {
			t.Errorf("early payload %s: %v", p.client.EarlyPayload(), err)
		}
		got, _ := io.ReadAll(p.client)
		if string(got) != "SETTINGS" {
			t.Errorf("after early payload read %q, want %q", got, "SETTINGS")
		}
	})
	t.Run("absent bytes are replayed", func(t *testing.T) {
		p := newMemPair(t, nil)
		// A typical first frame: SETTINGS header, in three small records.
		p.server.Write([]byte{0, 0, 18})
		p.server.Write([]byte{4, 0, 0, 0, 0, 0, 0, 3})
		p.server.Write([]byte("rest"))
		if err := p.client.readEarlyPayload(); err != nil {
			t.Fatal(err)
		}
		if p.client.EarlyPayload() != nil {
			t.Errorf("EarlyPayload = %q, want nil", p.client.EarlyPayload())
		}
		got, _ := io.ReadAll(p.client)
		if want := "\x00\x00\x12\x04\x00\x00\x00\x00\x00\x00\x03rest"; string(got) != want {
			t.Errorf("read %q, want %q", got, want)
		}
	})
	t.Run("too large", func(t *testing.T) {
		p := newMemPair(t, nil)
		hdr := binary.BigEndian.AppendUint32(earlyMagic[:], maxEarlyPayloadLen+1)
		p.server.Write(hdr)
		if err := p.client.readEarlyPayload(); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Errorf("readEarlyPayload = %v, want a size error", err)
		}
	})
	t.Run("not json", func(t *testing.T) {
		p := newMemPair(t, nil)
		p.server.Write(append(binary.BigEndian.AppendUint32(earlyMagic[:], 3), "{{{"...))
		if err := p.client.readEarlyPayload(); err == nil {
			t.Error("readEarlyPayload accepted invalid JSON")
		}
	})
}
