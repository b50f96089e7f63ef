package wgengine

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"weft.dev/weft/wire/ctrl"
)

// ipv4 builds a minimal IPv4 packet with a TCP/UDP/ICMP header.
func ipv4(proto byte, src, dst string, sport, dport uint16, tcpFlags byte) []byte {
	b := make([]byte, 20+20)
	b[0] = 0x45
	b[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	l4 := b[20:]
	switch proto {
	case ctrl.ProtoTCP, ctrl.ProtoUDP:
		binary.BigEndian.PutUint16(l4, sport)
		binary.BigEndian.PutUint16(l4[2:], dport)
		l4[13] = tcpFlags
	case ctrl.ProtoICMP:
		l4[0] = byte(sport) // type
	}
	return b
}

func TestFilter(t *testing.T) {
	self := []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32")}
	rules := compileFilter([]ctrl.FilterRule{{
		SrcIPs:   []string{"100.64.0.1", "100.64.1.0-100.64.1.9"},
		DstPorts: []ctrl.NetPortRange{{IP: "*", Ports: ctrl.PortRange{First: 22, Last: 22}}},
	}}, self, false)
	f := newFilter(nil)
	f.set(self, rules)
	st := f.rules.Load()
	const syn, ack = 0x02, 0x10
	tests := []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"allowed syn", ipv4(ctrl.ProtoTCP, "100.64.0.1", "100.64.0.2", 5000, 22, syn), true},
		{"allowed range", ipv4(ctrl.ProtoTCP, "100.64.1.5", "100.64.0.2", 5000, 22, syn), true},
		{"wrong port", ipv4(ctrl.ProtoTCP, "100.64.0.1", "100.64.0.2", 5000, 23, syn), false},
		{"wrong source", ipv4(ctrl.ProtoTCP, "100.64.0.3", "100.64.0.2", 5000, 22, syn), false},
		{"not our address", ipv4(ctrl.ProtoTCP, "100.64.0.1", "100.64.0.9", 5000, 22, syn), false},
		{"established tcp", ipv4(ctrl.ProtoTCP, "100.64.0.3", "100.64.0.2", 80, 5000, ack), true},
		{"syn-ack reply", ipv4(ctrl.ProtoTCP, "100.64.0.3", "100.64.0.2", 80, 5000, syn|ack), true},
		{"udp unsolicited", ipv4(ctrl.ProtoUDP, "100.64.0.3", "100.64.0.2", 53, 5000, 0), false},
		{"icmp echo request", ipv4(ctrl.ProtoICMP, "100.64.0.3", "100.64.0.2", 8, 0, 0), false},
		{"icmp echo reply", ipv4(ctrl.ProtoICMP, "100.64.0.3", "100.64.0.2", 0, 0, 0), true},
		{"garbage", []byte{0x45, 1}, false},
	}
	for _, tt := range tests {
		if got := f.allow(st, tt.pkt); got != tt.want {
			t.Errorf("%s: allow = %v, want %v", tt.name, got, tt.want)
		}
	}
	// A UDP reply passes once the host sent on that flow.
	out := ipv4(ctrl.ProtoUDP, "100.64.0.2", "100.64.0.3", 5000, 53, 0)
	p, _ := parsePacket(out)
	f.udpFlows[flowKey{p.src, p.dst}] = time.Now()
	if !f.allow(st, ipv4(ctrl.ProtoUDP, "100.64.0.3", "100.64.0.2", 53, 5000, 0)) {
		t.Error("UDP reply to an outbound flow was dropped")
	}
	// ShieldsUp blocks new flows even with allowing rules.
	f.set(self, compileFilter(ctrl.AllowAll(), self, true))
	if f.allow(f.rules.Load(), ipv4(ctrl.ProtoTCP, "100.64.0.1", "100.64.0.2", 5000, 22, syn)) {
		t.Error("shields up let a SYN through")
	}
}
