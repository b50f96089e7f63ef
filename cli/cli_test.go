package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func run(args ...string) (string, string, error) {
	var o, e bytes.Buffer
	err := Run(context.Background(), args, Env{Stdout: &o, Stderr: &e, DefaultSocket: "/nonexistent/weftd.sock"})
	return o.String(), e.String(), err
}

func TestHelpAndErrorsReadLikeTailscale(t *testing.T) {
	_, e, err := run("up", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"-login-server", "-auth-key", "-authkey", "-hostname", "-accept-dns", "-accept-routes",
		"-advertise-routes", "-advertise-exit-node", "-advertise-tags", "-exit-node", "-force-reauth", "-host-routes",
		"-operator", "-qr", "-reset", "-shields-up", "-timeout"} {
		if !strings.Contains(e, "  "+f+" ") && !strings.Contains(e, "  "+f+"=") {
			t.Errorf("up --help lacks %s", f)
		}
	}
	_, _, err = run("status")
	if err == nil || !strings.Contains(err.Error(), "failed to connect to local weftd process; it doesn't appear to be running") {
		t.Errorf("status without daemon: %v", err)
	}
	if _, _, err := run("up", "--advertise-routes", "0.0.0.0/0"); err == nil || !strings.Contains(err.Error(), "did you mean --advertise-exit-node?") {
		t.Errorf("default route: %v", err)
	}
	if _, _, err := run("up", "--host-routes=false"); err == nil || !strings.Contains(err.Error(), "only 'true' is allowed") {
		t.Errorf("host-routes=false: %v", err)
	}
	if _, _, err := run("up", "--exit-node-allow-lan-access"); err == nil || !strings.Contains(err.Error(), "can only be used with --exit-node") {
		t.Errorf("lan access: %v", err)
	}
	if _, _, err := run("bogus"); err == nil {
		t.Error("unknown subcommand accepted")
	}
}

func TestPrefsFromUpArgs(t *testing.T) {
	a := &upArgs{server: "http://x/", acceptDNS: true, snat: true, netfilterMode: "on", advertiseTags: "eng,tag:ops", advertiseDefaultRoute: true}
	p, err := prefsFromUpArgs(a)
	if err != nil {
		t.Fatal(err)
	}
	if p.ControlURL != "http://x" || strings.Join(p.AdvertiseTags, ",") != "tag:eng,tag:ops" || !p.AdvertisesExitNode() {
		t.Errorf("prefs = %+v", p)
	}
	f := prefsToFlags(p)
	if f["advertise-exit-node"] != true || f["advertise-routes"] != "" {
		t.Errorf("flags = %v", f)
	}
}
