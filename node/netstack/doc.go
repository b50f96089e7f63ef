// Package netstack is weft's userspace TCP/IP stack (gVisor netstack) for
// --tun=userspace-networking: a tun.Device for wireguard-go whose far side
// is an in-process IP stack holding the node's tunnel addresses. It lets the
// daemon dial and listen on tunnel addresses (for the SOCKS5 and HTTP
// proxies, and tests), and forwards inbound TCP connections to the node's
// tunnel address on to services listening on the host's loopback, as
// tailscaled does in userspace mode.
//
// Throughput: with Options.SplitGSO the stack emits TCP segments of up to
// 64 KB that the splitter (wgengine's TUN splitter) cuts to the MTU, and
// Write coalesces each batch's TCP segments per flow (gVisor's GRO) before
// the stack processes them. Inbound checksums count as checked: WireGuard
// authenticated the packets, as in-kernel WireGuard assumes.
//
// It owns the gVisor stack and its goroutines. It imports gVisor,
// wireguard-go's tun package and the standard library; it must not import
// other weft packages except internal/.
package netstack
