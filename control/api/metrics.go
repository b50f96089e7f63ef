package api

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	registrations prometheus.Counter
	noiseConns    prometheus.Gauge
	liteUpdates   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		registrations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_control_register_requests_total", Help: "Register requests received.",
		}),
		noiseConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weft_control_noise_connections", Help: "Open ts2021 Noise connections.",
		}),
		liteUpdates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weft_control_lite_updates_total", Help: "Non-streaming map requests (endpoint updates).",
		}),
	}
	reg.MustRegister(m.registrations, m.noiseConns, m.liteUpdates)
	return m
}
