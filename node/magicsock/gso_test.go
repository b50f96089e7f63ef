package magicsock

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCoalesce(t *testing.T) {
	if !gsoAvailable {
		t.Skip("no UDP GSO on this OS")
	}
	pk := func(n int) []byte { return make([]byte, n) }
	many := make([][]byte, 70)
	for i := range many {
		many[i] = pk(1000)
	}
	ua := &net.UDPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 1}
	tests := []struct {
		name string
		bufs [][]byte
		want [][]int // packet sizes per message
		gso  []bool  // whether each message carries UDP_SEGMENT
	}{
		{"one", [][]byte{pk(100)}, [][]int{{100}}, []bool{false}},
		{"equal", [][]byte{pk(100), pk(100), pk(100)}, [][]int{{100, 100, 100}}, []bool{true}},
		{"short last", [][]byte{pk(100), pk(100), pk(60), pk(100)}, [][]int{{100, 100, 60}, {100}}, []bool{true, false}},
		{"larger breaks", [][]byte{pk(100), pk(200), pk(200)}, [][]int{{100}, {200, 200}}, []bool{false, true}},
		{"segment cap", many, [][]int{sizes(64, 1000), sizes(6, 1000)}, []bool{true, true}},
		{"byte cap", [][]byte{pk(40000), pk(40000)}, [][]int{{40000}, {40000}}, []bool{false, false}},
	}
	for _, tt := range tests {
		msgs := coalesce(tt.bufs, ua)
		var got [][]int
		var gso []bool
		for _, m := range msgs {
			var s []int
			for _, b := range m.Buffers {
				s = append(s, len(b))
			}
			got = append(got, s)
			gso = append(gso, m.OOB != nil)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: messages (-want +got):\n%s", tt.name, diff)
		}
		if diff := cmp.Diff(tt.gso, gso); diff != "" {
			t.Errorf("%s: UDP_SEGMENT (-want +got):\n%s", tt.name, diff)
		}
	}
}

func sizes(n, size int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = size
	}
	return s
}

// TestGROLoopback sends GSO runs over loopback and reads them back through
// UDP GRO: every datagram arrives once, intact and in order.
func TestGROLoopback(t *testing.T) {
	if !gsoAvailable || !groAvailable {
		t.Skip("no UDP GSO/GRO on this OS")
	}
	var osn OSNetwork
	rx, err := osn.ListenUDP("udp4", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := osn.ListenUDP("udp4", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), rx.LocalAddrPort().Port())
	var want [][]byte
	for i := range 150 {
		size := 1200
		if i%50 == 49 {
			size = 300 // a short one ends each run
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(i + j)
		}
		want = append(want, b)
	}
	for i := 0; i < len(want); i += 50 {
		if err := tx.WriteBatch(want[i:i+50], dst); err != nil {
			t.Fatal(err)
		}
	}
	bufs := make([][]byte, 128)
	for i := range bufs {
		bufs[i] = make([]byte, 65535)
	}
	sizes := make([]int, len(bufs))
	srcs := make([]netip.AddrPort, len(bufs))
	var got [][]byte
	rx.SetReadDeadline(time.Now().Add(5 * time.Second))
	for len(got) < len(want) {
		n, err := rx.ReadBatch(bufs, sizes, srcs)
		if err != nil {
			t.Fatalf("after %d datagrams: %v", len(got), err)
		}
		for i := range n {
			if srcs[i].Port() != tx.LocalAddrPort().Port() {
				t.Errorf("datagram %d from %v", len(got), srcs[i])
			}
			got = append(got, bytes.Clone(bufs[i][:sizes[i]]))
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("datagrams (-want +got):\n%s", diff)
	}
	if !rx.(*osConn).gro {
		t.Log("UDP_GRO was refused: only the plain path was tested")
	}
}
