// Command dataplane benchmarks weftd's data plane against official
// tailscaled v1.102.5 on the same rig in the same run (needs root: it
// builds network namespaces with internal/nettest). A weft-control with its
// embedded DERP relay serves both pairs; each pair is two daemons in TUN
// mode on one lab segment. For each pair it measures the time from `up` to
// the first ICMP reply through the tunnel, ICMP round-trip time, iperf3 TCP
// throughput with 1 and 4 streams (and the daemons' CPU time), the direct
// to DERP failover time after UDP is blocked, and the daemons' RSS idle and
// after load; then it prints weft/official ratios. -rounds N alternates the
// two pairs N times on fresh nodes and prints each round's ratios and
// their medians (the machine is shared: ratios between neighbours in time
// are the figures to quote). With -profile it saves a
// CPU profile of the sending weftd during the iperf3 run and prints its top
// functions. -userspace measures instead both implementations in
// userspace-networking mode: a curl through node 1's SOCKS5 proxy fetches
// 1 GiB from an HTTP server on node 2's loopback at node 2's tailnet
// address. DATAPLANE_HEAP=path (with -profile) also saves heap profiles
// of both weftds right after load to path.1 and path.2. With
// DATAPLANE_SLOW_LOGS=1 in the environment weftd runs with
// --verbose=2 and a first pong slower than 1 s prints both daemons' logs.
//
//	go build -o /tmp/dataplane ./bench/dataplane && sudo /tmp/dataplane
//
// It is a program, not a test: it imports the interop helpers (which take
// a testing.TB) through a small adapter that turns Fatal into an error.
package main
