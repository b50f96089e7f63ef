// Package controltest is a minimal ts2021 client that speaks to a control
// server exactly as official clients do (Noise upgrade, HTTP/2, register,
// lite updates, zstd map streams) and keeps a netmap from the frames it
// receives. Tests and bench/control-scale use it to simulate many nodes.
//
// It imports noise and wire/*, never control server packages, so it can be
// pointed at any server (weft-control, headscale).
package controltest
