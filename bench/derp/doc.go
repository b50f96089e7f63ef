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
//	go run ./bench/derp -scenarios relayed -runs 3 -weft-derp-base /tmp/weft-derp-old
//	go run ./bench/derp -scenarios relayed -relays weft-derp,gmp1 -variant gmp1=GOMAXPROCS=1
//
// -weft-derp-base adds a second weft-derp binary (say, built from an older
// commit in a git worktree) to every scenario, for an A/B comparison in the
// same run; -variant NAME=ENV=VAL;... adds a relayed contender that runs
// the weft-derp binary with extra environment; -relays picks and orders
// the relayed contenders.
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
//     run builds a fresh lab; -runs alternates relays and reports medians
//     and per-run ratios. Each run also prints diagnostics: idle ICMP RTT
//     through the tunnel before iperf3 (sparse-traffic latency), the
//     average TSO/GSO burst the sender's kernel handed to tailscale0 (in
//     MTU-sized packets), the relay's read/write syscalls and context
//     switches, and "others": machine CPU time not used by the relay or
//     the two tailscaled (iperf3, and noise from anything else running;
//     runs with seconds of it were disturbed).
package main
