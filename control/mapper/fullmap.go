package mapper

import (
	"encoding/binary"
	"slices"
	"sync"
	"time"

	"weft.dev/weft/control/state"
)

// Full maps without a policy are every other node, so consecutive sessions
// send nearly the same bytes. They are built from compressed blocks of
// peers cached across sessions: a zstd stream may consist of several
// frames, which the client (klauspost's DecodeAll, used by Tailscale's
// zstdframe) decodes as their concatenation. Only the head (self node,
// DNS, DERP map…) and the block holding the node itself are compressed per
// session, so a new session costs O(N/peerBlockSize) cache lookups instead
// of encoding and compressing every peer.

// peerBlockSize is how many consecutive node IDs share one cached block.
const peerBlockSize = 64

// blockCache holds the compressed peer blocks.
type blockCache struct {
	mu sync.Mutex
	// guarded by mu:
	blocks map[int64]*peerBlock // key: node ID / peerBlockSize
}

// peerBlock is one block: the node versions it was built from and the
// zstd frame of ",peer,peer,…".
type peerBlock struct {
	nodes []*state.Node
	z     []byte
}

// fullMapWire returns the wire bytes (length prefix and zstd frames) of a
// session's first map when every node sees every other. The buffer comes
// from b.bufs.
func (b *Batcher) fullMapWire(selfID int64, snap *state.Snapshot, now time.Time) ([]byte, error) {
	head, err := b.fullMapHead(selfID, snap, mapView{}, now)
	if err != nil {
		return nil, err
	}
	out := b.bufs.get(4 + len(head) + len(snap.Nodes)*256)[:4]
	started := false
	var text []byte
	for g := range blocksOf(snap.Nodes) {
		hasSelf := slices.ContainsFunc(g, func(n *state.Node) bool { return n.ID == selfID })
		switch {
		case !started:
			// The head and the first peers go in one frame, so that no
			// frame starts with a comma after "[".
			text = append(text[:0], head[:len(head)-1]...)
			if len(head) > 2 {
				text = append(text, ',')
			}
			text = append(text, `"Peers":[`...)
			first := true
			for _, n := range g {
				if n.ID == selfID {
					continue
				}
				if !first {
					text = append(text, ',')
				}
				first = false
				text = append(text, b.peerJSONFor(n, now)...)
			}
			if first {
				continue // the block held only the node itself
			}
			out = b.enc.EncodeAll(text, out)
			started = true
		case hasSelf:
			text = text[:0]
			for _, n := range g {
				if n.ID != selfID {
					text = append(append(text, ','), b.peerJSONFor(n, now)...)
				}
			}
			if len(text) > 0 {
				out = b.enc.EncodeAll(text, out)
			}
		default:
			out = append(out, b.cachedBlock(g, now)...)
		}
	}
	if started {
		out = b.enc.EncodeAll([]byte("]}"), out)
	} else {
		out = b.enc.EncodeAll(head, out)
	}
	binary.LittleEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}

// blocksOf yields the ID-sorted nodes grouped by block.
func blocksOf(nodes []*state.Node) func(func([]*state.Node) bool) {
	return func(yield func([]*state.Node) bool) {
		for i := 0; i < len(nodes); {
			k := nodes[i].ID / peerBlockSize
			j := i + 1
			for j < len(nodes) && nodes[j].ID/peerBlockSize == k {
				j++
			}
			if !yield(nodes[i:j]) {
				return
			}
			i = j
		}
	}
}

// cachedBlock returns the compressed frame for block g, rebuilding it when
// any of its nodes changed (node versions are immutable pointers).
func (b *Batcher) cachedBlock(g []*state.Node, now time.Time) []byte {
	k := g[0].ID / peerBlockSize
	b.blocks.mu.Lock()
	if pb := b.blocks.blocks[k]; pb != nil && slices.Equal(pb.nodes, g) {
		b.blocks.mu.Unlock()
		return pb.z
	}
	b.blocks.mu.Unlock()
	var text []byte
	for _, n := range g {
		text = append(append(text, ','), b.peerJSONFor(n, now)...)
	}
	pb := &peerBlock{nodes: slices.Clone(g), z: b.enc.EncodeAll(text, nil)}
	b.blocks.mu.Lock()
	if b.blocks.blocks == nil {
		b.blocks.blocks = make(map[int64]*peerBlock)
	}
	b.blocks.blocks[k] = pb
	b.blocks.mu.Unlock()
	return pb.z
}
