package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/tailscale/hujson"
)

// sshRule is one entry of the "ssh" section. It is parsed and validated;
// compiling it to a node's SSHPolicy is left to a later change.
type sshRule struct {
	action      string // "accept" or "check"
	src, dst    []alias
	users       []string
	checkPeriod time.Duration // 0: Tailscale's default (12h); -1: "always"
	acceptEnv   []string
}

// maxCheckPeriod is Tailscale's upper bound for "checkPeriod".
const maxCheckPeriod = 168 * time.Hour

func (ps *parser) sshRule(v *hujson.Value, path string) {
	f := ps.fields(v, path, "action", "src", "dst", "users", "checkPeriod", "acceptEnv")
	if f == nil {
		return
	}
	var r sshRule
	ok := true
	if av := f["action"]; av == nil {
		ps.errorf(v.StartOffset, "%s: missing \"action\" (want \"accept\" or \"check\")", path)
		ok = false
	} else if s, sok := ps.str(av, path+".action"); sok {
		if s.s != "accept" && s.s != "check" {
			ps.errorf(s.off, "%s: action %q is not valid (want \"accept\" or \"check\")", path, s.s)
			ok = false
		}
		r.action = s.s
	}
	for _, key := range []string{"src", "dst", "users"} {
		if f[key] == nil {
			ps.errorf(v.StartOffset, "%s: missing %q", path, key)
			ok = false
		}
	}
	if !ok {
		return
	}
	srcHasTags := false
	for _, s := range ps.strs(f["src"], path+".src") {
		a, aok := ps.alias(s, useSSHSrc)
		if !aok {
			ok = false
			continue
		}
		if a.kind == kindTag || a.kind == kindTagged || a.kind == kindWildcard {
			srcHasTags = true
		}
		r.src = append(r.src, a)
	}
	for _, d := range ps.strs(f["dst"], path+".dst") {
		a, aok := ps.alias(d, useSSHDst)
		if !aok {
			ok = false
			continue
		}
		// Tailscale: a tag may not SSH into user-owned devices.
		if srcHasTags && (a.kind == kindSelf || a.kind == kindMember || a.kind == kindUser) {
			ps.errorf(d.off, "%s: tagged sources cannot SSH into user-owned devices (%q)", path, d.s)
			ok = false
			continue
		}
		r.dst = append(r.dst, a)
	}
	users := ps.strs(f["users"], path+".users")
	if len(users) == 0 {
		ps.errorf(f["users"].StartOffset, "%s: users must list at least one SSH user", path)
		ok = false
	}
	for _, u := range users {
		switch {
		case u.s == "":
			ps.errorf(u.off, "%s: empty SSH user", path)
			ok = false
		case strings.HasPrefix(u.s, "autogroup:") && u.s != "autogroup:nonroot":
			ps.errorf(u.off, "%s: SSH user %q is not valid (the only autogroup is \"autogroup:nonroot\")", path, u.s)
			ok = false
		case strings.HasPrefix(u.s, "localpart:") && !strings.HasPrefix(u.s, "localpart:*@"):
			ps.errorf(u.off, "%s: SSH user %q is not valid (want \"localpart:*@<domain>\")", path, u.s)
			ok = false
		}
		r.users = append(r.users, u.s)
	}
	if cv := f["checkPeriod"]; cv != nil {
		if s, sok := ps.str(cv, path+".checkPeriod"); sok {
			switch d, err := parseCheckPeriod(s.s); {
			case r.action != "check":
				ps.errorf(s.off, "%s: checkPeriod is only valid with action \"check\"", path)
				ok = false
			case err != nil:
				ps.errorf(s.off, "%s: checkPeriod: %v", path, err)
				ok = false
			default:
				r.checkPeriod = d
			}
		}
	}
	if ev := f["acceptEnv"]; ev != nil {
		for _, e := range ps.strs(ev, path+".acceptEnv") {
			if e.s == "" {
				ps.errorf(e.off, "%s: acceptEnv values cannot be empty", path)
				ok = false
			}
			r.acceptEnv = append(r.acceptEnv, e.s)
		}
	}
	if ok {
		ps.p.ssh = append(ps.p.ssh, r)
	}
}

func parseCheckPeriod(s string) (time.Duration, error) {
	if s == "always" {
		return -1, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be a positive duration", s)
	}
	if d > maxCheckPeriod {
		return 0, fmt.Errorf("%q is above the maximum (168h)", s)
	}
	return d, nil
}
