package magicsock

import (
	"net"
	"testing"

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
