// Package nettest is the network-namespace harness for weft's root-only
// integration tests.
//
// A [Lab] owns every namespace it creates and removes them when the test
// ends, pass or fail. Nodes are namespaces with one veth ("eth0") plugged into
// a segment; a segment is a Linux bridge living in its own "switch"
// namespace, so nothing is ever created in the host namespace. Every address
// comes from 198.18.0.0/15 (RFC 2544 benchmark range) and the host's routes,
// resolv.conf and firewall are never touched. Programs are started with
// `ip netns exec`, which also gives each one a private mount namespace whose
// /sys matches the network namespace and whose /etc/resolv.conf is the lab's
// own (see [Lab.NewNode]).
//
// Tests that use this package call [RequireRoot] first. It skips when not
// root, unless WEFT_INTEROP=1 is set, in which case it fails so that CI
// cannot silently skip.
//
// nettest must not import any weft product package: it is a leaf that both
// interop scenarios and future root-only tests of node/ can use.
package nettest
