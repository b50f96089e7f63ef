// Package admin is weft-control's administration API: a JSON-over-HTTP
// interface under /api/v1/ to users, pre-auth keys, nodes, routes, custom DNS
// records, the tailnet policy and API keys, plus the Go Client that the weft-control admin
// subcommands (control/admincli) use to call it.
//
// The same handler is served twice: on the unix socket
// <state-dir>/weft-control.sock (mode 0600, no key needed: file permissions
// are the authentication) and, when enabled, on the public listener, where
// every request must carry "Authorization: Bearer weft-api-…".
//
// admin turns requests into calls on control/state, the single owner of the
// node table, and reads key listings from control/store. It never mutates
// the store behind state's back except for key expiry and API-key last-use
// times, which state does not cache. It must not import protocol-session
// code (control/api, control/mapper) or node code.
package admin
