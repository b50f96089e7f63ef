// Command derp benchmarks weft-derp against the official derper v1.102.5 on
// loopback in the same run and prints both rates and their ratio (house rule
// 11: a benchmark measures against its baseline). It is not a test.
//
// Both relays run as separate processes started with the same derper flags
// (weft-derp is flag compatible), and both are driven by the same client
// (weft's relay/derpclient), so only the relay differs.
//
//	GOBIN=/tmp/tsbin go install tailscale.com/cmd/derper@v1.102.5
//	go run ./bench/derp -derper /tmp/tsbin/derper -clients 1000 -duration 5s
//
// Scenarios: "single" (one flow, flat out: shows drops under a fast
// sender) and "clients" (pairs ping-ponging with a window of 16 packets, a
// closed loop that measures forwarding capacity). Reported: packets/s
// delivered to receivers and the fraction of sent packets that did not
// arrive within the window (in-flight packets at the end count as lost).
package main
