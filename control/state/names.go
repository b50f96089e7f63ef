package state

import (
	"strconv"
	"strings"
)

// maxLabel is the longest DNS label (RFC 1035).
const maxLabel = 63

// SanitizeLabel turns a client-reported hostname into a DNS label:
// lower-case letters, digits and '-', no leading or trailing '-', at most 63
// characters. An empty result becomes "node".
func SanitizeLabel(host string) string {
	if i := strings.IndexByte(host, '.'); i >= 0 {
		host = host[:i]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '-' || r == '_' || r == ' ':
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > maxLabel {
		s = strings.TrimRight(s[:maxLabel], "-")
	}
	if s == "" {
		s = "node"
	}
	return s
}

// ValidLabel reports whether s is already a valid label as SanitizeLabel
// would produce it.
func ValidLabel(s string) bool { return s != "" && SanitizeLabel(s) == s }

// uniqueNameLocked returns base, or base-1, base-2… — the first one not
// taken by a node other than self.
func (s *State) uniqueNameLocked(base string, self int64) string {
	taken := func(n string) bool {
		id, ok := s.names[n]
		return ok && id != self
	}
	if !taken(base) {
		return base
	}
	for i := 1; ; i++ {
		suffix := "-" + strconv.Itoa(i)
		b := base
		if len(b)+len(suffix) > maxLabel {
			b = strings.TrimRight(b[:maxLabel-len(suffix)], "-")
		}
		if !taken(b + suffix) {
			return b + suffix
		}
	}
}
