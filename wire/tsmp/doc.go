// Package tsmp builds and parses the packets a node originates inside the
// tunnel to probe a peer: TSMP ("Tailscale Message Protocol", IP protocol
// 99) ping requests and pong replies, and the ICMP and ICMPv6 echo
// requests and replies that `ping --icmp` sends the same way. Each is a
// whole IPv4 or IPv6 packet, as it travels through WireGuard.
//
// The wire formats match tailscale v1.102.5 (net/packet/tsmp.go, ip4.go,
// ip6.go, icmp4.go, icmp6.go): after the IP header a TSMP ping is the type
// byte 'p' and 8 opaque bytes; a pong is 'o', the same 8 bytes and the
// replier's PeerAPI port, big-endian. TSMP has no checksum of its own.
// Echo messages live here rather than in a package of their own because
// the engine sends, matches and times them exactly like TSMP pings.
//
// It is pure codec code: no I/O, no goroutines. Parsers take hostile input
// (any bytes a peer put in a WireGuard packet). It must not import any
// other weft package.
package tsmp
