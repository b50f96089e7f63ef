package store

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"
)

// Both implementations hand back values in one canonical form so that a
// value read from Memory compares equal (whole-value) to the same value read
// from SQLite: times are UTC without a monotonic reading, and empty slices
// and raw messages are nil. The helpers below also deep-copy, which is what
// keeps Memory's callers from aliasing its internal state.

func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Round(0).UTC()
}

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

func clonePrefixes(p []netip.Prefix) []netip.Prefix {
	if len(p) == 0 {
		return nil
	}
	return slices.Clone(p)
}

func cloneRaw(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	return slices.Clone(m)
}

func normUser(u User) User {
	u.CreatedAt = normTime(u.CreatedAt)
	return u
}

func normNode(n Node) Node {
	n.Hostinfo = cloneRaw(n.Hostinfo)
	n.Tags = cloneStrings(n.Tags)
	n.AdvertisedRoutes = clonePrefixes(n.AdvertisedRoutes)
	n.ApprovedRoutes = clonePrefixes(n.ApprovedRoutes)
	n.Expiry = normTime(n.Expiry)
	n.CreatedAt = normTime(n.CreatedAt)
	n.LastSeen = normTime(n.LastSeen)
	return n
}

func normPreAuthKey(k PreAuthKey) PreAuthKey {
	k.Hash = cloneBytes(k.Hash)
	k.Tags = cloneStrings(k.Tags)
	k.Expiration = normTime(k.Expiration)
	k.CreatedAt = normTime(k.CreatedAt)
	return k
}

func normAPIKey(k APIKey) APIKey {
	k.Hash = cloneBytes(k.Hash)
	k.Expiration = normTime(k.Expiration)
	k.CreatedAt = normTime(k.CreatedAt)
	k.LastUsed = normTime(k.LastUsed)
	return k
}

func normPolicy(p Policy) Policy {
	p.CreatedAt = normTime(p.CreatedAt)
	return p
}
