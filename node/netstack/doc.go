// Package netstack is weft's userspace TCP/IP stack (gVisor netstack) for
// --tun=userspace-networking: a tun.Device for wireguard-go whose far side
// is an in-process IP stack holding the node's tunnel addresses. It lets the
// daemon dial and listen on tunnel addresses (for the SOCKS5 and HTTP
// proxies, and tests), and forwards inbound TCP connections to the node's
// tunnel address on to services listening on the host's loopback, as
// tailscaled does in userspace mode.
//
// It owns the gVisor stack and its goroutines. It imports gVisor,
// wireguard-go's tun package and the standard library; it must not import
// other weft packages except internal/.
package netstack
