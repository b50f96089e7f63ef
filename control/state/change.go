package state

// ChangeKind says what happened to a node (or to tailnet-wide config).
type ChangeKind int

// Kinds of change. Patch-level kinds can be sent as PeersChangedPatch;
// the others need a whole node (PeersChanged) or a removal.
const (
	NodeAdded     ChangeKind = iota + 1 // a new node became visible
	NodeChanged                         // a field that needs a whole-node update changed
	NodePatched                         // endpoints, home DERP, disco key, node key or key expiry changed
	NodeOnline                          // online state changed
	NodeRemoved                         // the node was deleted
	DNSChanged                          // DNS config (records, domain) changed
	PolicyChanged                       // the packet filters or peer sets of Affected nodes changed
	UserChanged                         // a user profile changed
)

func (k ChangeKind) String() string {
	switch k {
	case NodeAdded:
		return "added"
	case NodeChanged:
		return "changed"
	case NodePatched:
		return "patched"
	case NodeOnline:
		return "online"
	case NodeRemoved:
		return "removed"
	case DNSChanged:
		return "dns"
	case PolicyChanged:
		return "policy"
	case UserChanged:
		return "user"
	}
	return "unknown"
}

// Change is one event, handed to the OnChange callback in commit order.
type Change struct {
	Kind   ChangeKind
	NodeID int64
	// Node is the node after the change (nil for NodeRemoved and
	// tailnet-wide kinds); Old is the node before it (nil for NodeAdded).
	Node, Old *Node
	// Affected lists, for PolicyChanged, the nodes whose packet filter or
	// set of visible peers changed, sorted.
	Affected []int64
}
