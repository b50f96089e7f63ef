package relay

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// dropReason labels dropped packets (names follow upstream's
// derp_packets_dropped_reason labels where one exists).
type dropReason int

const (
	dropUnknownDest      dropReason = iota // unknown_dest
	dropUnknownDestOnFwd                   // unknown_dest_on_fwd
	dropGone                               // gone_disconnected
	dropQueueHead                          // queue_head
	dropDupClient                          // dup_client
	dropFwdError                           // write_error (mesh forward)
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"unknown_dest", "unknown_dest_on_fwd", "gone_disconnected", "queue_head", "dup_client", "write_error",
}

// counters are the server's statistics, updated with atomics on the hot
// path and read by the Prometheus collector.
type counters struct {
	accepts, rejected            atomic.Uint64
	packetsRecv, bytesRecv       atomic.Uint64
	packetsSent, bytesSent       atomic.Uint64
	forwardedIn, forwardedOut    atomic.Uint64
	backpressureWaits, pings     atomic.Uint64
	peerGoneFrames, stunRequests atomic.Uint64
	inlineWrites, inlineHandoffs atomic.Uint64
	drops                        [numDropReasons]atomic.Uint64
	homeConns, meshConns         atomic.Int64
}

func (m *counters) drop(r dropReason) { m.drops[r].Add(1) }

// Stats is a snapshot of the server's counters.
type Stats struct {
	Accepts, Rejected                     uint64
	PacketsReceived, BytesReceived        uint64
	PacketsSent, BytesSent                uint64
	PacketsForwardedIn, PacketsForwardOut uint64
	BackpressureWaits                     uint64
	// InlineWrites counts batches a sender's reader wrote to the
	// destination socket itself; InlineHandoffs those of them the socket
	// did not take whole, finished by the destination's writer.
	InlineWrites, InlineHandoffs    uint64
	Dropped                         map[string]uint64
	Clients, HomeClients, MeshPeers int
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Accepts: s.m.accepts.Load(), Rejected: s.m.rejected.Load(),
		PacketsReceived: s.m.packetsRecv.Load(), BytesReceived: s.m.bytesRecv.Load(),
		PacketsSent: s.m.packetsSent.Load(), BytesSent: s.m.bytesSent.Load(),
		PacketsForwardedIn: s.m.forwardedIn.Load(), PacketsForwardOut: s.m.forwardedOut.Load(),
		BackpressureWaits: s.m.backpressureWaits.Load(),
		InlineWrites:      s.m.inlineWrites.Load(),
		InlineHandoffs:    s.m.inlineHandoffs.Load(),
		Dropped:           map[string]uint64{},
		HomeClients:       int(s.m.homeConns.Load()),
		MeshPeers:         int(s.m.meshConns.Load()),
	}
	for i := range s.m.drops {
		st.Dropped[dropReasonNames[i]] = s.m.drops[i].Load()
	}
	s.mu.Lock()
	st.Clients = len(s.all)
	s.mu.Unlock()
	return st
}

// collector exposes the counters to Prometheus without per-packet
// Prometheus overhead.
type collector struct{ s *Server }

var (
	descConns   = prometheus.NewDesc("derp_current_connections", "Current DERP connections.", nil, nil)
	descHome    = prometheus.NewDesc("derp_current_home_connections", "Connections that declared this server their home.", nil, nil)
	descMesh    = prometheus.NewDesc("derp_current_mesh_connections", "Connections from mesh peers.", nil, nil)
	descAccepts = prometheus.NewDesc("derp_accepts_total", "Accepted DERP logins.", nil, nil)
	descReject  = prometheus.NewDesc("derp_rejected_total", "Logins rejected by client verification.", nil, nil)
	descPktIn   = prometheus.NewDesc("derp_packets_received_total", "Packets received from clients.", nil, nil)
	descBytesIn = prometheus.NewDesc("derp_bytes_received_total", "Packet bytes received.", nil, nil)
	descPktOut  = prometheus.NewDesc("derp_packets_sent_total", "Packets written to clients.", nil, nil)
	descByteOut = prometheus.NewDesc("derp_bytes_sent_total", "Packet bytes written to clients.", nil, nil)
	descFwdIn   = prometheus.NewDesc("derp_packets_forwarded_in_total", "Packets received from mesh peers.", nil, nil)
	descFwdOut  = prometheus.NewDesc("derp_packets_forwarded_out_total", "Packets forwarded to mesh peers.", nil, nil)
	descBP      = prometheus.NewDesc("derp_backpressure_waits_total", "Times a sender waited for a full queue.", nil, nil)
	descPings   = prometheus.NewDesc("derp_pings_total", "Ping frames received.", nil, nil)
	descGone    = prometheus.NewDesc("derp_peer_gone_frames_total", "PeerGone frames sent.", nil, nil)
	descSTUN    = prometheus.NewDesc("stun_requests_total", "STUN binding requests answered.", nil, nil)
	descInline  = prometheus.NewDesc("derp_inline_writes_total", "Packet batches a sender's reader wrote to the destination socket itself.", nil, nil)
	descHandoff = prometheus.NewDesc("derp_inline_handoffs_total", "Inline writes the destination socket did not take whole (finished by its writer).", nil, nil)
	descDrops   = prometheus.NewDesc("derp_packets_dropped_total", "Dropped packets by reason.", []string{"reason"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descHome, descMesh, descAccepts, descReject, descPktIn,
		descBytesIn, descPktOut, descByteOut, descFwdIn, descFwdOut, descBP, descPings, descGone, descSTUN, descDrops,
		descInline, descHandoff} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := &c.s.m
	c.s.mu.Lock()
	n := len(c.s.all)
	c.s.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	count := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descConns, float64(n))
	gauge(descHome, float64(m.homeConns.Load()))
	gauge(descMesh, float64(m.meshConns.Load()))
	count(descAccepts, m.accepts.Load())
	count(descReject, m.rejected.Load())
	count(descPktIn, m.packetsRecv.Load())
	count(descBytesIn, m.bytesRecv.Load())
	count(descPktOut, m.packetsSent.Load())
	count(descByteOut, m.bytesSent.Load())
	count(descFwdIn, m.forwardedIn.Load())
	count(descFwdOut, m.forwardedOut.Load())
	count(descBP, m.backpressureWaits.Load())
	count(descPings, m.pings.Load())
	count(descGone, m.peerGoneFrames.Load())
	count(descSTUN, m.stunRequests.Load())
	count(descInline, m.inlineWrites.Load())
	count(descHandoff, m.inlineHandoffs.Load())
	for i := range m.drops {
		ch <- prometheus.MustNewConstMetric(descDrops, prometheus.CounterValue, float64(m.drops[i].Load()), dropReasonNames[i])
	}
}
