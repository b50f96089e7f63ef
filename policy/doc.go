// Package policy parses Tailscale's HuJSON tailnet policy format (groups,
// hosts, tagOwners, autoApprovers, acls, ssh, tests) and compiles it into
// per-node packet filters (wire/ctrl FilterRule) and peer visibility.
//
// It owns the policy semantics only: it knows nodes through its own small
// Node model and never touches the store, the mapper or the network. It
// imports wire/ctrl for the filter types, hujson and the standard library,
// and nothing else from weft. Compiled is updated one node at a time and
// reports which nodes' filters or peer sets changed, so a change costs
// O(affected nodes) rather than a full O(N²) rebuild.
package policy
