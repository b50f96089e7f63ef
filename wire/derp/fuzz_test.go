package derp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"

	"weft.dev/weft/wire/key"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzFrames feeds arbitrary bytes through the frame reader and every
// payload parser, as a server or client reading hostile input would.
func FuzzFrames(f *testing.F) {
	k := key.NewNode().Public()
	seed := func(frames ...[]byte) []byte { return bytes.Join(frames, nil) }
	frame := func(t FrameType, p []byte) []byte { return append(AppendHeader(nil, t, uint32(len(p))), p...) }
	f.Add(seed(frame(FrameSendPacket, append(AppendKey(nil, k), "hello"...)), frame(FrameKeepAlive, nil)))
	f.Add(seed(frame(FramePeerPresent, AppendPeerPresent(nil, PeerPresent{Key: k})), frame(FramePeerGone, AppendPeerGone(nil, k, 1))))
	f.Add(seed(frame(FrameForwardPacket, append(AppendKey(AppendKey(nil, k), k), 1, 2)), frame(FrameRestarting, AppendRestarting(nil, 1, 2))))
	f.Add(seed(frame(FrameServerKey, AppendServerKey(nil, k)), frame(FramePing, make([]byte, 8))))
	f.Add([]byte{0x04, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x02, 0, 0, 0, 56})
	server := key.NewNode()
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(bytes.NewReader(b))
		var buf []byte
		for {
			ft, p, err := ReadFrame(br, 64<<10+2*KeyLen, buf)
			if err != nil {
				return
			}
			buf = p[:0]
			if len(p) > 64<<10+2*KeyLen {
				t.Fatalf("payload %d beyond cap", len(p))
			}
			switch ft {
			case FrameServerKey:
				ParseServerKey(p)
			case FrameClientInfo:
				OpenClientInfo(server, p)
			case FrameSendPacket:
				if _, pkt, err := ParseSendPacket(p); err == nil && len(pkt) > MaxPacketSize {
					t.Fatal("oversize packet accepted")
				}
			case FrameRecvPacket:
				ParseRecvPacket(p)
			case FrameForwardPacket:
				ParseForwardPacket(p)
			case FramePeerGone:
				ParsePeerGone(p)
			case FramePeerPresent:
				if m, err := ParsePeerPresent(p); err == nil && len(p) >= PeerPresentLen {
					if got := AppendPeerPresent(nil, m); !bytes.Equal(got[:KeyLen], p[:KeyLen]) {
						t.Fatal("PeerPresent key round trip")
					}
				}
			case FrameRestarting:
				ParseRestarting(p)
			}
			LooksLikeDisco(p)
		}
	})
}

// FuzzClientInfoJSON checks that any JSON a client can seal is either
// rejected or decoded without panicking, and that decoding is stable.
func FuzzClientInfoJSON(f *testing.F) {
	f.Add([]byte(`{"version":2,"CanAckPings":true}`))
	f.Add([]byte(`{"meshKey":"` + string(bytes.Repeat([]byte("ab"), 32)) + `","IsProber":true}`))
	f.Add([]byte(`{"meshKey":"zz"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		var info ClientInfo
		if err := json.Unmarshal(msg, &info); err != nil {
			return
		}
		again, err := json.Marshal(info)
		if err != nil {
			t.Fatal(err)
		}
		var info2 ClientInfo
		if err := json.Unmarshal(again, &info2); err != nil || !info2.MeshKey.Equal(info.MeshKey) || info2.Version != info.Version {
			t.Fatalf("unstable: %s -> %s (%v)", msg, again, err)
		}
	})
}
