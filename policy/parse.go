package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/tailscale/hujson"

	"weft.dev/weft/wire/ctrl"
)

// maxPolicySize bounds the input: policy files are small, and the parser
// should not be a way to make the control server allocate without limit.
const maxPolicySize = 4 << 20

// Policy is a parsed, validated tailnet policy file.
type Policy struct {
	allowAll       bool // no "acls" key: Tailscale and headscale allow all traffic
	acls           []acl
	groups         map[string][]string // group name -> normalised users
	hosts          map[string]netip.Prefix
	tagOwners      map[string][]alias
	routeApprovers []routeApprover
	exitApprovers  []alias
	ssh            []sshRule
	tests          []policyTest
	pos            position
}

type acl struct {
	src    []alias
	dsts   []aclDst
	protos []int
}

type aclDst struct {
	a     alias
	ports []ctrl.PortRange
}

type routeApprover struct {
	prefix    netip.Prefix
	approvers []alias
}

// strAt is a string value and where it starts in the file.
type strAt struct {
	s   string
	off int
}

// use says where in the file an alias appears; each place allows different kinds.
type use uint8

const (
	useSrc use = iota
	useDst
	useOwner
	useApprover
	useSSHSrc
	useSSHDst
	useTest
)

type parser struct {
	pos  position
	errs Errors
	p    *Policy
}

// Parse parses and validates a HuJSON policy file. Every problem found is
// reported, as an Errors value, with its line and column.
func Parse(data []byte) (*Policy, error) {
	pos := position{src: data}
	if len(data) > maxPolicySize {
		return nil, Errors{{Line: 1, Col: 1, Msg: fmt.Sprintf("policy is %d bytes; the limit is %d", len(data), maxPolicySize)}}
	}
	root, err := hujson.Parse(data)
	if err != nil {
		return nil, Errors{syntaxError(err)}
	}
	ps := &parser{pos: pos, p: &Policy{pos: pos, allowAll: true}}
	ps.policy(&root)
	if len(ps.errs) > 0 {
		sortErrors(ps.errs)
		return nil, ps.errs
	}
	return ps.p, nil
}

// syntaxError turns hujson's "hujson: line L, column C: msg" into an Error.
func syntaxError(err error) Error {
	var line, col int
	msg := err.Error()
	if _, serr := fmt.Sscanf(msg, "hujson: line %d, column %d:", &line, &col); serr == nil {
		if _, rest, ok := strings.Cut(msg, fmt.Sprintf("column %d: ", col)); ok {
			msg = rest
		}
	}
	return Error{Line: line, Col: col, Msg: "syntax error: " + msg}
}

func (ps *parser) errorf(off int, format string, args ...any) {
	line, col := ps.pos.at(off)
	ps.errs = append(ps.errs, Error{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// unsupportedField reports Tailscale policy sections weft does not
// implement yet; naming them gives a better error than "unknown field".
func unsupportedField(name string) bool {
	switch name {
	case "grants", "nodeAttrs", "postures", "defaultSrcPosture", "ipsets",
		"sshTests", "derpMap", "disableIPv4", "OneCGNATRoute", "randomizeClientPort", "attrs":
		return true
	}
	return false
}

// fields returns the members of an object whose names are in known, and
// reports duplicate, unsupported and unknown members.
func (ps *parser) fields(v *hujson.Value, what string, known ...string) map[string]*hujson.Value {
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		ps.errorf(v.StartOffset, "%s must be an object, not %s", what, kindName(v))
		return nil
	}
	out := make(map[string]*hujson.Value)
	for i := range obj.Members {
		m := &obj.Members[i]
		name := m.Name.Value.(hujson.Literal).String()
		if _, dup := out[name]; dup {
			ps.errorf(m.Name.StartOffset, "duplicate field %q in %s", name, what)
			continue
		}
		found := false
		for _, k := range known {
			if k == name {
				found = true
			}
		}
		if !found {
			switch {
			case what == "policy" && unsupportedField(name):
				ps.errorf(m.Name.StartOffset, "field %q is not supported by weft yet", name)
			default:
				hint := ""
				for _, k := range known {
					if strings.EqualFold(k, name) || strings.EqualFold(k, name+"s") {
						hint = fmt.Sprintf(" (did you mean %q?)", k)
					}
				}
				ps.errorf(m.Name.StartOffset, "unknown field %q in %s%s", name, what, hint)
			}
			continue
		}
		out[name] = &m.Value
	}
	return out
}

type entry struct {
	key strAt
	val *hujson.Value
}

// entries returns the members of an object with free-form keys (groups,
// hosts, tagOwners, autoApprovers.routes), rejecting duplicate keys.
func (ps *parser) entries(v *hujson.Value, what string) []entry {
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		ps.errorf(v.StartOffset, "%s must be an object, not %s", what, kindName(v))
		return nil
	}
	seen := make(map[string]bool)
	var out []entry
	for i := range obj.Members {
		m := &obj.Members[i]
		name := m.Name.Value.(hujson.Literal).String()
		if seen[name] {
			ps.errorf(m.Name.StartOffset, "duplicate key %q in %s", name, what)
			continue
		}
		seen[name] = true
		out = append(out, entry{key: strAt{name, m.Name.StartOffset}, val: &m.Value})
	}
	return out
}

func (ps *parser) str(v *hujson.Value, what string) (strAt, bool) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '"' {
		ps.errorf(v.StartOffset, "%s must be a string, not %s", what, kindName(v))
		return strAt{}, false
	}
	return strAt{lit.String(), v.StartOffset}, true
}

func (ps *parser) strs(v *hujson.Value, what string) []strAt {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		ps.errorf(v.StartOffset, "%s must be an array of strings, not %s", what, kindName(v))
		return nil
	}
	out := make([]strAt, 0, len(arr.Elements))
	for i := range arr.Elements {
		if s, ok := ps.str(&arr.Elements[i], fmt.Sprintf("%s[%d]", what, i)); ok {
			out = append(out, s)
		}
	}
	return out
}

func (ps *parser) objects(v *hujson.Value, what string) []*hujson.Value {
	arr, ok := v.Value.(*hujson.Array)
	if !ok {
		ps.errorf(v.StartOffset, "%s must be an array, not %s", what, kindName(v))
		return nil
	}
	out := make([]*hujson.Value, len(arr.Elements))
	for i := range arr.Elements {
		out[i] = &arr.Elements[i]
	}
	return out
}

func kindName(v *hujson.Value) string {
	switch v.Value.Kind() {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "an invalid value"
}

func (ps *parser) policy(root *hujson.Value) {
	f := ps.fields(root, "policy",
		"groups", "hosts", "tagOwners", "autoApprovers", "acls", "ssh", "tests")
	if f == nil {
		return
	}
	// Definitions first, whatever their order in the file, so references
	// from acls and ssh can be checked.
	if v := f["groups"]; v != nil {
		ps.groups(v)
	}
	if v := f["hosts"]; v != nil {
		ps.hosts(v)
	}
	if v := f["tagOwners"]; v != nil {
		ps.tagOwners(v)
	}
	if v := f["autoApprovers"]; v != nil {
		ps.autoApprovers(v)
	}
	if v := f["acls"]; v != nil {
		ps.p.allowAll = false
		for i, a := range ps.objects(v, "acls") {
			ps.acl(a, fmt.Sprintf("acls[%d]", i))
		}
	}
	if v := f["ssh"]; v != nil {
		for i, r := range ps.objects(v, "ssh") {
			ps.sshRule(r, fmt.Sprintf("ssh[%d]", i))
		}
	}
	if v := f["tests"]; v != nil {
		for i, t := range ps.objects(v, "tests") {
			ps.test(t, fmt.Sprintf("tests[%d]", i))
		}
	}
}

func (ps *parser) groups(v *hujson.Value) {
	ps.p.groups = make(map[string][]string)
	for _, e := range ps.entries(v, "groups") {
		name := e.key.s
		if !strings.HasPrefix(name, "group:") || len(name) == len("group:") {
			ps.errorf(e.key.off, "group name %q must start with \"group:\"", name)
			continue
		}
		var users []string
		for _, m := range ps.strs(e.val, name) {
			if strings.HasPrefix(m.s, "group:") {
				ps.errorf(m.off, "%s: group %q cannot contain another group", name, m.s)
				continue
			}
			if !strings.Contains(m.s, "@") || strings.HasPrefix(m.s, "tag:") || strings.HasPrefix(m.s, "autogroup:") {
				ps.errorf(m.off, "%s: member %q is not a user (users contain \"@\", e.g. \"alice@example.com\")", name, m.s)
				continue
			}
			users = append(users, normUser(m.s))
		}
		ps.p.groups[name] = users
	}
}

func (ps *parser) hosts(v *hujson.Value) {
	ps.p.hosts = make(map[string]netip.Prefix)
	for _, e := range ps.entries(v, "hosts") {
		if !validHostName(e.key.s) {
			ps.errorf(e.key.off, "invalid host name %q (no \":\", \"@\" or \"/\", and not an IP address)", e.key.s)
			continue
		}
		s, ok := ps.str(e.val, "hosts."+e.key.s)
		if !ok {
			continue
		}
		pfx, err := parseIPOrPrefix(s.s)
		if err != nil {
			ps.errorf(s.off, "hosts.%s: %v", e.key.s, err)
			continue
		}
		ps.p.hosts[e.key.s] = pfx
	}
}

func (ps *parser) tagOwners(v *hujson.Value) {
	ps.p.tagOwners = make(map[string][]alias)
	ents := ps.entries(v, "tagOwners")
	// Tags may own tags, so every tag name is known before owners are read.
	for _, e := range ents {
		if !validTagName(e.key.s) {
			ps.errorf(e.key.off, "invalid tag name %q (want \"tag:\" then a letter, then letters, digits, '-' or '_')", e.key.s)
			continue
		}
		ps.p.tagOwners[e.key.s] = nil
	}
	for _, e := range ents {
		if _, ok := ps.p.tagOwners[e.key.s]; !ok {
			continue
		}
		owners := []alias{}
		for _, o := range ps.strs(e.val, "tagOwners."+e.key.s) {
			if a, ok := ps.alias(o, useOwner); ok {
				owners = append(owners, a)
			}
		}
		ps.p.tagOwners[e.key.s] = owners
	}
}

func (ps *parser) autoApprovers(v *hujson.Value) {
	f := ps.fields(v, "autoApprovers", "routes", "exitNode")
	if rv := f["routes"]; rv != nil {
		for _, e := range ps.entries(rv, "autoApprovers.routes") {
			pfx, err := netip.ParsePrefix(e.key.s)
			if err != nil {
				ps.errorf(e.key.off, "autoApprovers.routes: invalid CIDR %q", e.key.s)
				continue
			}
			ra := routeApprover{prefix: pfx.Masked()}
			for _, s := range ps.strs(e.val, "autoApprovers.routes."+e.key.s) {
				if a, ok := ps.alias(s, useApprover); ok {
					ra.approvers = append(ra.approvers, a)
				}
			}
			ps.p.routeApprovers = append(ps.p.routeApprovers, ra)
		}
	}
	if ev := f["exitNode"]; ev != nil {
		for _, s := range ps.strs(ev, "autoApprovers.exitNode") {
			if a, ok := ps.alias(s, useApprover); ok {
				ps.p.exitApprovers = append(ps.p.exitApprovers, a)
			}
		}
	}
}

func (ps *parser) acl(v *hujson.Value, path string) {
	f := ps.fields(v, path, "action", "src", "dst", "proto")
	if f == nil {
		return
	}
	var r acl
	ok := true
	if av := f["action"]; av == nil {
		ps.errorf(v.StartOffset, "%s: missing \"action\" (want \"accept\")", path)
		ok = false
	} else if s, sok := ps.str(av, path+".action"); sok && s.s != "accept" {
		ps.errorf(s.off, "%s: action %q is not supported (only \"accept\"; anything not accepted is denied)", path, s.s)
		ok = false
	}
	if pv := f["proto"]; pv != nil {
		if s, sok := ps.str(pv, path+".proto"); sok {
			protos, err := protoNumbers(s.s)
			if err != nil {
				ps.errorf(s.off, "%s: %v", path, err)
				ok = false
			}
			r.protos = protos
		}
	}
	srcs, dsts := f["src"], f["dst"]
	if srcs == nil {
		ps.errorf(v.StartOffset, "%s: missing \"src\"", path)
		return
	}
	if dsts == nil {
		ps.errorf(v.StartOffset, "%s: missing \"dst\"", path)
		return
	}
	srcSelfOK := true // autogroup:self needs sources that are users
	for _, s := range ps.strs(srcs, path+".src") {
		a, aok := ps.alias(s, useSrc)
		if !aok {
			ok = false
			continue
		}
		switch a.kind {
		case kindWildcard, kindUser, kindGroup, kindMember:
		default:
			srcSelfOK = false
		}
		r.src = append(r.src, a)
	}
	for _, d := range ps.strs(dsts, path+".dst") {
		host, ports, found := splitHostPorts(d.s)
		if !found {
			ps.errorf(d.off, "%s: destination %q has no ports; write %q for all ports", path, d.s, d.s+":*")
			ok = false
			continue
		}
		pr, err := parsePorts(ports)
		if err != nil {
			ps.errorf(d.off, "%s: destination %q: %v", path, d.s, err)
			ok = false
			continue
		}
		if ports != "*" && !protoHasPorts(r.protos) {
			ps.errorf(d.off, "%s: destination %q: protocol %d has no ports; use \"*\"", path, d.s, r.protos[0])
			ok = false
			continue
		}
		a, aok := ps.alias(strAt{host, d.off}, useDst)
		if !aok {
			ok = false
			continue
		}
		if a.kind == kindSelf && !srcSelfOK {
			ps.errorf(d.off, "%s: autogroup:self can only be used with sources that are users, groups, autogroup:member or \"*\"", path)
			ok = false
			continue
		}
		r.dsts = append(r.dsts, aclDst{a: a, ports: pr})
	}
	if ok {
		ps.p.acls = append(ps.p.acls, r)
	}
}

// alias parses one name as used at u and checks that what it refers to
// is defined.
func (ps *parser) alias(s strAt, u use) (alias, bool) {
	t := s.s
	bad := func(format string, args ...any) (alias, bool) {
		ps.errorf(s.off, format, args...)
		return alias{}, false
	}
	where := u.String()
	switch {
	case t == "*":
		if u == useSrc || u == useDst || u == useSSHSrc {
			return alias{kind: kindWildcard}, true
		}
		return bad("\"*\" is not valid in %s", where)
	case strings.HasPrefix(t, "autogroup:"):
		var a alias
		switch t {
		case "autogroup:member":
			a.kind = kindMember
		case "autogroup:tagged":
			a.kind = kindTagged
		case "autogroup:self":
			a.kind = kindSelf
		case "autogroup:internet":
			a.kind = kindInternet
		case "autogroup:admin":
			a.kind = kindAdmin
		default:
			return bad("unknown or unsupported autogroup %q", t)
		}
		switch {
		case a.kind == kindSelf && u != useDst && u != useSSHDst:
			if u == useSrc {
				return bad("%q not valid on the src side of a rule", t)
			}
			return bad("%q is not valid in %s", t, where)
		case a.kind == kindInternet && u != useDst:
			return bad("autogroup:internet can only be used in ACL destinations")
		case a.kind == kindAdmin && u != useOwner:
			return bad("%q is not valid in %s", t, where)
		case u == useApprover && a.kind != kindMember && a.kind != kindTagged:
			return bad("%q is not valid in %s", t, where)
		case u == useTest:
			return bad("%q is not valid in %s; name a user, tag, host or IP", t, where)
		}
		return a, true
	case strings.HasPrefix(t, "group:"):
		if u == useSSHDst || u == useTest {
			return bad("group %q is not valid in %s", t, where)
		}
		if _, ok := ps.p.groups[t]; !ok {
			return bad("group %q is not defined in \"groups\"", t)
		}
		return alias{kind: kindGroup, name: t}, true
	case strings.HasPrefix(t, "tag:"):
		if _, ok := ps.p.tagOwners[t]; !ok {
			return bad("tag %q is not defined in \"tagOwners\"", t)
		}
		return alias{kind: kindTag, name: t}, true
	case strings.Contains(t, "@"):
		return alias{kind: kindUser, name: normUser(t)}, true
	}
	if u == useOwner || u == useApprover || u == useSSHSrc || u == useSSHDst {
		return bad("%q is not valid in %s; use a user, group or tag", t, where)
	}
	if pfx, ok := ps.p.hosts[t]; ok {
		return alias{kind: kindPrefix, name: t, prefix: pfx}, true
	}
	if looksLikeAddress(t) {
		pfx, err := parseIPOrPrefix(t)
		if err != nil {
			return bad("%v", err)
		}
		return alias{kind: kindPrefix, prefix: pfx}, true
	}
	return bad("host %q is not defined in \"hosts\"", t)
}

func (u use) String() string {
	switch u {
	case useSrc:
		return "an ACL source"
	case useDst:
		return "an ACL destination"
	case useOwner:
		return "a tag owner"
	case useApprover:
		return "an auto-approver"
	case useSSHSrc:
		return "an SSH source"
	case useSSHDst:
		return "an SSH destination"
	}
	return "a test"
}
