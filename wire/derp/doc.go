// Package derp is the DERP relay protocol codec: frame types, the 5-byte
// frame header with size caps, the ServerKey/ClientInfo/ServerInfo login
// frames (ClientInfo and ServerInfo sealed with NaCl box), and the payload
// layouts of every frame official clients and derpers send.
//
// Layouts follow shared/protocol/derp-disco.md §1 (upstream derp/derp.go,
// derp/derp_client.go, derp/derpserver/derpserver.go). The package is pure
// codec code: it reads and writes through caller-supplied bufio buffers but
// starts no goroutines, holds no state and does not allocate on the packet
// path. It may import only wire/key; the relay (relay/) and node packages
// build on it.
package derp
