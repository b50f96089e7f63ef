// Package derpclient is a DERP client: it dials a relay over the HTTP
// upgrade (http/https) or WebSocket (ws/wss), logs in with a node key and
// sends and receives frames. It serves weft's relay tests, the relay's mesh
// dialer and, later, weftd's DERP path.
//
// It owns one connection per Client and no background goroutines. It
// imports only wire/ packages and must not import relay, node or control
// packages.
package derpclient
