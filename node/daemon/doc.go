// Package daemon assembles weftd: state store, engine, backend, LocalAPI
// socket, metrics and the optional debug listener, with tailscaled's flag
// semantics. cmd/weftd parses flags into a Config and calls Run; tests
// build a Daemon in-process with their own engine, credentials function
// and control-client options.
//
// It imports the node/* packages; nothing imports it but cmd/weftd and tests.
package daemon
