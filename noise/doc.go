// Package noise implements "ts2021", the transport of Tailscale's control
// protocol: a Noise IK handshake (Noise_IK_25519_ChaChaPoly_BLAKE2s) carried
// in an HTTP/1.1 upgrade on /ts2021 (or a WebSocket), followed by a stream of
// encrypted, length-prefixed records on which HTTP/2 runs.
//
// It owns the handshake (client and server), the record framing (Conn), the
// optional server "early payload", the HTTP upgrade on both sides and the
// GET /key bootstrap. The byte layouts and rules are in
// shared/protocol/control.md §1–2; the one quirk that trips stock Noise
// libraries is that transport nonces are big-endian.
//
// It may import only weft.dev/weft/wire/key and external modules: no control
// server or node code, and never tailscale.com.
package noise
