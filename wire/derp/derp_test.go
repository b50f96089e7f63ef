package derp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"weft.dev/weft/wire/key"
)

func TestMagic(t *testing.T) {
	if got := hex.EncodeToString([]byte(Magic)); got != "44455250f09f9491" {
		t.Fatalf("magic = %s", got)
	}
	if len(discoMagic) != 6 {
		t.Fatalf("disco magic len %d", len(discoMagic))
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriterSize(&buf, 16) // small, to exercise the WriteByte path
	dst := key.NewNode().Public()
	pkt := bytes.Repeat([]byte{0xab}, 100)
	must(t, WriteFrame(bw, FrameSendPacket, AppendKey(nil, dst), pkt))
	must(t, WriteFrame(bw, FrameKeepAlive))
	must(t, WriteFrame(bw, FrameNotePreferred, []byte{1}))
	must(t, bw.Flush())
	if got := hex.EncodeToString(buf.Bytes()[:5]); got != "0400000084" {
		t.Fatalf("header = %s", got)
	}
	br := bufio.NewReader(&buf)
	ft, p, err := ReadFrame(br, MaxFrameLen, nil)
	must(t, err)
	gotDst, gotPkt, err := ParseSendPacket(p)
	must(t, err)
	if ft != FrameSendPacket || gotDst != dst || !bytes.Equal(gotPkt, pkt) {
		t.Fatalf("got %v %v %d bytes", ft, gotDst, len(gotPkt))
	}
	ft, p, err = ReadFrame(br, MaxFrameLen, p)
	if ft != FrameKeepAlive || len(p) != 0 || err != nil {
		t.Fatalf("keepalive: %v %d %v", ft, len(p), err)
	}
	ft, p, err = ReadFrame(br, MaxFrameLen, p)
	if ft != FrameNotePreferred || !bytes.Equal(p, []byte{1}) || err != nil {
		t.Fatalf("notepreferred: %v %x %v", ft, p, err)
	}
	if _, _, err := ReadFrame(br, MaxFrameLen, p); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestReadFrameLimits(t *testing.T) {
	big := AppendHeader(nil, FrameSendPacket, MaxFrameLen+1)
	_, _, err := ReadFrame(bufio.NewReader(bytes.NewReader(big)), MaxFrameLen, nil)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
	trunc := append(AppendHeader(nil, FramePing, 8), 1, 2, 3)
	_, _, err = ReadFrame(bufio.NewReader(bytes.NewReader(trunc)), MaxFrameLen, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated: %v", err)
	}
	_, _, err = ReadFrame(bufio.NewReader(bytes.NewReader([]byte{4, 0})), MaxFrameLen, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated header: %v", err)
	}
	if _, _, err := ParseSendPacket(make([]byte, KeyLen+MaxPacketSize+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize packet: %v", err)
	}
}

func TestLogin(t *testing.T) {
	server, client := key.NewNode(), key.NewNode()
	mk, err := ParseMeshKey(" " + hex.EncodeToString(bytes.Repeat([]byte{7}, 32)) + "\n")
	must(t, err)
	want := ClientInfo{MeshKey: mk, Version: ProtocolVersion, CanAckPings: true, AppName: "weft"}
	p, err := SealClientInfo(nil, client, server.Public(), want)
	must(t, err)
	gotKey, got, err := OpenClientInfo(server, p)
	must(t, err)
	if gotKey != client.Public() {
		t.Fatalf("client key %v", gotKey)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(MeshKey.Equal)); diff != "" {
		t.Fatalf("ClientInfo (-want +got):\n%s", diff)
	}
	p[len(p)-1] ^= 1
	if _, _, err := OpenClientInfo(server, p); err == nil {
		t.Fatal("tampered ClientInfo opened")
	}
	sp, err := SealServerInfo(nil, server, client.Public(), ServerInfo{Version: 2})
	must(t, err)
	si, err := OpenServerInfo(client, server.Public(), sp)
	if err != nil || si.Version != 2 {
		t.Fatalf("ServerInfo = %+v, %v", si, err)
	}
	sk := AppendServerKey(nil, server.Public())
	if k, err := ParseServerKey(append(sk, 9, 9)); err != nil || k != server.Public() {
		t.Fatalf("ServerKey = %v %v", k, err)
	}
	sk[0] = 'X'
	if _, err := ParseServerKey(sk); err == nil {
		t.Fatal("bad magic accepted")
	}
}

func TestClientInfoJSON(t *testing.T) {
	// Spellings must match upstream derp.ClientInfo exactly.
	for _, tc := range []struct {
		in   ClientInfo
		want string
	}{
		{ClientInfo{}, `{"CanAckPings":false}`},
		{ClientInfo{Version: 2, CanAckPings: true}, `{"version":2,"CanAckPings":true}`},
		{ClientInfo{MeshKey: MeshKey{k: [32]byte{31: 1}}, IsProber: true, AppName: "x"},
			`{"meshKey":"0000000000000000000000000000000000000000000000000000000000000001","CanAckPings":false,"IsProber":true,"AppName":"x"}`},
	} {
		b := mustJSON(t, tc.in)
		if b != tc.want {
			t.Errorf("got  %s\nwant %s", b, tc.want)
		}
	}
}

func TestPeerPresent(t *testing.T) {
	k := key.NewNode().Public()
	m := PeerPresent{Key: k, Addr: netip.MustParseAddrPort("198.18.0.2:41641"), Flags: PeerPresentIsRegular}
	b := AppendPeerPresent(nil, m)
	if len(b) != PeerPresentLen {
		t.Fatalf("len %d", len(b))
	}
	for _, n := range []int{KeyLen, KeyLen + 18, PeerPresentLen, PeerPresentLen + 3} {
		in := append(append([]byte(nil), b...), 0, 0, 0)[:n]
		got, err := ParsePeerPresent(in)
		must(t, err)
		want := PeerPresent{Key: k}
		if n >= KeyLen+18 {
			want.Addr = m.Addr
		}
		if n >= PeerPresentLen {
			want.Flags = m.Flags
		}
		if got != want {
			t.Errorf("len %d: got %+v want %+v", n, got, want)
		}
	}
	g, r, err := ParsePeerGone(AppendPeerGone(nil, k, PeerGoneNotHere))
	if g != k || r != PeerGoneNotHere || err != nil {
		t.Fatalf("PeerGone %v %v %v", g, r, err)
	}
	if _, r, _ := ParsePeerGone(AppendKey(nil, k)); r != PeerGoneDisconnected {
		t.Fatalf("old PeerGone reason %v", r)
	}
	ri, tf, err := ParseRestarting(AppendRestarting(nil, 1500*time.Millisecond, time.Minute))
	if ri != 1500*time.Millisecond || tf != time.Minute || err != nil {
		t.Fatalf("Restarting %v %v %v", ri, tf, err)
	}
}

func TestFrameTypeString(t *testing.T) {
	if FrameRestarting.String() != "Restarting" || FrameType(0x0b).String() != "FrameType(0x0b)" {
		t.Fatal(FrameRestarting.String(), FrameType(0x0b).String())
	}
}

func TestNoAllocs(t *testing.T) {
	var stream bytes.Buffer
	bw := bufio.NewWriter(&stream)
	dst := AppendKey(nil, key.NewNode().Public())
	pkt := make([]byte, 1200)
	for range 200 {
		must(t, WriteFrame(bw, FrameSendPacket, dst, pkt))
	}
	must(t, bw.Flush())
	br := bufio.NewReader(&stream)
	buf := make([]byte, 0, 2048)
	wbw := bufio.NewWriter(io.Discard)
	n := testing.AllocsPerRun(100, func() {
		_, p, err := ReadFrame(br, MaxFrameLen, buf)
		if err != nil {
			panic(err)
		}
		_, pk, _ := ParseSendPacket(p)
		WriteHeader(wbw, FrameRecvPacket, uint32(KeyLen+len(pk)))
		wbw.Write(p)
	})
	if n != 0 {
		t.Fatalf("packet path allocates %v per frame", n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
