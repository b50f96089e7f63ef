package store

import (
	"errors"
	"fmt"
)

// errClosed is returned by every method called after Close.
var errClosed = errors.New("store is closed")

// conflictErr reports that the unique column col ("table.column", as named
// in SQLite constraint-failure messages) already holds the value being
// written. Both implementations use it so a conflict reads the same
// whichever store produced it.
func conflictErr(col string) error {
	return fmt.Errorf("%s already in use: %w", uniqueLabel(col), ErrConflict)
}

func uniqueLabel(col string) string {
	switch col {
	case "users.name":
		return "user name"
	case "nodes.node_key":
		return "node key"
	case "nodes.given_name":
		return "given name"
	case "nodes.ipv4":
		return "IPv4 address"
	case "nodes.ipv6":
		return "IPv6 address"
	case "pre_auth_keys.prefix":
		return "pre-auth key prefix"
	case "api_keys.prefix":
		return "API key prefix"
	case "dns_records.name":
		return "DNS record"
	}
	return col
}

// nodeName names n in error messages.
func nodeName(n *Node) string {
	if n.GivenName != "" {
		return fmt.Sprintf("%q (%s)", n.GivenName, n.NodeKey.ShortString())
	}
	return n.NodeKey.ShortString()
}
