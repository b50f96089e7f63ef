// Command weft-derp is a standalone DERP relay and STUN server, flag
// compatible with Tailscale's derper.
package main
