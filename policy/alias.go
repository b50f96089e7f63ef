package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"weft.dev/weft/wire/ctrl"
)

// aliasKind is what a policy name such as "group:eng" or "10.0.0.0/8" denotes.
type aliasKind uint8

const (
	kindWildcard aliasKind = iota + 1 // "*"
	kindUser                          // "alice@example.com", "alice@"
	kindGroup                         // "group:eng"
	kindTag                           // "tag:server"
	kindPrefix                        // an IP, a CIDR or a name from "hosts"
	kindMember                        // autogroup:member: user-owned nodes
	kindTagged                        // autogroup:tagged: tagged nodes
	kindSelf                          // autogroup:self: the source's own user's nodes
	kindInternet                      // autogroup:internet: via exit nodes
	kindAdmin                         // autogroup:admin (tagOwners only; matches no one in weft)
)

// alias is one parsed name. name holds the normalised user, group or tag
// name; prefix holds the address for kindPrefix (hosts resolve at parse time).
type alias struct {
	kind   aliasKind
	name   string
	prefix netip.Prefix
}

func (a alias) nodeSelector() bool {
	switch a.kind {
	case kindUser, kindGroup, kindTag, kindMember, kindTagged:
		return true
	}
	return false
}

// normUser is how user names compare: case-insensitively, and with
// headscale's "alice@" spelling equal to a bare login name "alice".
func normUser(s string) string {
	return strings.ToLower(strings.TrimSuffix(s, "@"))
}

func validTagName(t string) bool {
	name, ok := strings.CutPrefix(t, "tag:")
	if !ok || name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '_'):
		default:
			return false
		}
	}
	return true
}

func validHostName(h string) bool {
	if h == "" || strings.ContainsAny(h, ":@/*, \t") {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return false
	}
	return true
}

// parseIPOrPrefix accepts "1.2.3.4", "fd7a::1" and "10.0.0.0/8". Host bits in
// a CIDR are masked off, as Tailscale does.
func parseIPOrPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid CIDR %q", s)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q", s)
	}
	if ip.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("invalid IP address %q: zones are not allowed", s)
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// looksLikeAddress reports whether s was probably meant as an IP or CIDR,
// so a typo gets "invalid CIDR" rather than "unknown host".
func looksLikeAddress(s string) bool {
	if strings.Contains(s, "/") {
		return true
	}
	digitsDots := s != ""
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r == '.') {
			digitsDots = false
		}
	}
	return digitsDots || strings.Count(s, ":") >= 2
}

// parsePorts parses the part after the last colon of a destination:
// "*", "22", "22,80,443", "1000-2000" or a comma list mixing them.
func parsePorts(s string) ([]ctrl.PortRange, error) {
	if s == "*" {
		return []ctrl.PortRange{ctrl.PortRangeAny}, nil
	}
	if s == "" {
		return nil, fmt.Errorf("missing ports (use \"*\" for all ports)")
	}
	var out []ctrl.PortRange
	for part := range strings.SplitSeq(s, ",") {
		first, last, isRange := strings.Cut(part, "-")
		f, err := parsePort(first)
		if err != nil {
			return nil, fmt.Errorf("port range %q: %v", part, err)
		}
		l := f
		if isRange {
			if l, err = parsePort(last); err != nil {
				return nil, fmt.Errorf("port range %q: %v", part, err)
			}
			if f > l {
				return nil, fmt.Errorf("port range %q: first port is greater than last", part)
			}
		}
		out = append(out, ctrl.PortRange{First: f, Last: l})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("empty port number")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("%q is not a port number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %s is out of range 0-65535", s)
	}
	return uint16(n), nil
}

// splitHostPorts splits "alias:ports" at the last colon, so "tag:a:22",
// "fd7a::1:22" and "[fd7a::1]:22" all work.
func splitHostPorts(s string) (host, ports string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", false
	}
	host, ports = s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	return host, ports, true
}

// protoNumbers maps an ACL "proto" to IANA numbers, following Tailscale
// (and headscale's hscontrol/policy/v2 table): names are case-insensitive,
// numbers are 1-255 without leading zeros, "icmp" is ICMPv4 only.
func protoNumbers(s string) ([]int, error) {
	switch strings.ToLower(s) {
	case "":
		return nil, nil
	case "icmp":
		return []int{ctrl.ProtoICMP}, nil
	case "igmp":
		return []int{ctrl.ProtoIGMP}, nil
	case "ipv4", "ip-in-ip":
		return []int{4}, nil
	case "tcp":
		return []int{ctrl.ProtoTCP}, nil
	case "egp":
		return []int{8}, nil
	case "igp":
		return []int{9}, nil
	case "udp":
		return []int{ctrl.ProtoUDP}, nil
	case "gre":
		return []int{ctrl.ProtoGRE}, nil
	case "esp":
		return []int{ctrl.ProtoESP}, nil
	case "ah":
		return []int{ctrl.ProtoAH}, nil
	case "ipv6-icmp", "icmpv6":
		return []int{ctrl.ProtoICMPv6}, nil
	case "sctp":
		return []int{ctrl.ProtoSCTP}, nil
	case "fc":
		return []int{133}, nil
	}
	if s[0] == '0' {
		return nil, fmt.Errorf("invalid protocol %q: leading zeros are not allowed", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil || s[0] == '+' || s[0] == '-' {
		return nil, fmt.Errorf("unknown protocol %q (use a name such as \"tcp\" or a number 1-255)", s)
	}
	if n < 1 || n > 255 {
		return nil, fmt.Errorf("protocol number %d is out of range 1-255", n)
	}
	return []int{n}, nil
}

// protoHasPorts reports whether ports mean anything for the protocols:
// Tailscale only allows specific ports with TCP, UDP and SCTP (or no proto).
func protoHasPorts(protos []int) bool {
	for _, p := range protos {
		if p != ctrl.ProtoTCP && p != ctrl.ProtoUDP && p != ctrl.ProtoSCTP {
			return false
		}
	}
	return true
}
