// Package ctrl holds the JSON wire types of the ts2021 control protocol
// (the tailcfg shapes of Tailscale v1.102: register and map requests and
// responses, nodes, Hostinfo, DNS config, DERP map, packet filters, SSH
// policy) and the map-response frame codec.
//
// Field names follow the Go field names of Tailscale's tailcfg package, as
// its clients expect, and omission rules follow tailcfg v1.102 except where
// the protocol gives nil and empty different meanings (PacketFilter: []
// drops all inbound, Health: [] means healthy): there every slice and map
// is tagged omitzero, so nil is left out and an empty value is sent. See
// MapResponse.
//
// Pure data and codecs: no network I/O of its own, no goroutines. It imports
// only wire/key, the standard library and github.com/klauspost/compress/zstd;
// it must never import tailscale.com or any other weft package.
package ctrl
