package mapper

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sessions     prometheus.Gauge
	flushes      prometheus.Counter
	bytesOut     prometheus.Counter
	deltaLatency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_control_map_sessions", Help: "Open streaming map sessions.",
		}),
		flushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_control_delta_flushes_total", Help: "Batches of changes turned into delta frames.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_control_map_bytes_total", Help: "Map response bytes written (after compression).",
		}),
		deltaLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weft_control_delta_latency_seconds",
			Help:    "Time from a state change to its delta being queued to every session.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	reg.MustRegister(m.sessions, m.flushes, m.bytesOut, m.deltaLatency)
	return m
}
