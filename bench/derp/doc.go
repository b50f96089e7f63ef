// Command derp benchmarks weft-derp against the official derper v1.102.5 in
// the same run and prints both figures and their ratio (house rule 11: a
// benchmark measures against its baseline). It is not a test.
//
// Both relays run as separate processes started with the same derper flags
// (weft-derp is flag compatible). The official binaries come from the
// interop cache (installed there if missing, see interop.InstallTailscale).
//
//	go run ./bench/derp                                   # all scenarios, as root
//	go run ./bench/derp -scenarios pps,idle               # no root needed
//	go run ./bench/derp -scenarios relayed -runs 3 -cpuprofile /tmp/weft-derp.prof
//
// Scenarios:
//
//   - pps: both relays on loopback driven by the same Go client
//     (relay/derpclient): "single" (one flow, flat out: shows drops under a
//     fast sender) and "clients" (pairs ping-ponging with a window of 16
//     packets, a closed loop that measures forwarding capacity). Reported:
//     packets/s delivered and the fraction of sent packets lost.
//   - idle: RSS of each relay with -idle logged-in, idle connections.
//   - relayed (root): the realistic one. Official tailscaled ×2 (TUN mode)
//     in network namespaces with UDP between them blocked, weft-control as
//     control server and the relay under test as the only DERP region
//     (`-dev` plain HTTP, clients on TS_DEBUG_USE_DERP_HTTP=1); iperf3 TCP,
//     one stream, through it. Reported: Gbit/s, inner TCP retransmits and
//     RTT, drops on the relay's destination queues, drops in the sending
//     client's own DERP write queue, and relay and client CPU time. Each
//     run builds a fresh lab; -runs alternates relays and reports medians.
package main
