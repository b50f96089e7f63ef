// Package netmap holds NetworkMap, a node's immutable view of its tailnet as
// last received from the control server: the self node, peers, DERP map,
// DNS configuration, packet filter and user profiles. The control client
// produces it; the engine, DNS, status and CLI consume it.
//
// It imports only wire/*.
package netmap
