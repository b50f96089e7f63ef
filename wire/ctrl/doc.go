// Package ctrl holds the JSON wire types of the ts2021 control protocol
// (the tailcfg shapes: register and map requests/responses, nodes, DNS
// config, DERP map, packet filters) and the map-response frame codec.
//
// Field names follow the Go field names of Tailscale's tailcfg package, as
// its clients expect. Where the protocol gives nil and empty different
// meanings (PacketFilter: [] drops all inbound), the types keep the
// difference. Pure data: no I/O, no goroutines; imports only wire/key.
package ctrl
