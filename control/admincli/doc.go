// Package admincli implements the administration subcommands of the
// weft-control binary (users, keys, nodes, routes, dns, policy, apikeys).
// Each one is a thin call on control/admin's Client: over the unix socket
// in the state directory of a running server, or over HTTPS with an API
// key for a remote one. Lists print aligned tables, or JSON with --json.
//
// Output on stdout is part of the contract scripts rely on (notably
// "keys create" prints only the key); messages and errors go to stderr.
// admincli imports control/admin, and policy for `policy check`, which
// validates a file locally without a server; never control/state or the
// store: every change goes through the server that owns them.
package admincli
