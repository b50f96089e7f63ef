package state

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"weft.dev/weft/node/ipn"
	"weft.dev/weft/wire/ctrl"
	"weft.dev/weft/wire/key"
)

func sample() *File {
	f := &File{Version: CurrentVersion, MachineKey: key.NewMachine(), Profiles: map[ipn.ProfileID]*Profile{}}
	p := f.NewProfile(ipn.NewPrefs())
	p.Prefs.ControlURL = "http://127.0.0.1:1"
	p.ControlURL = p.Prefs.ControlURL
	p.NodeKey = key.NewNode()
	p.UserProfile = ctrl.UserProfile{ID: 1, LoginName: "alice"}
	p.NodeID = "7"
	f.CurrentProfile = p.ID
	return f
}

var keyCmp = cmp.Options{
	cmp.Comparer(func(a, b key.MachinePrivate) bool { return a.Raw32() == b.Raw32() }),
	cmp.Comparer(func(a, b key.NodePrivate) bool { return a.Raw32() == b.Raw32() }),
	cmpopts.EquateComparable(),
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	f := sample()
	b, err := Encode(f)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(f, g, keyCmp); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := Encode(sample())
	cases := map[string]string{
		"empty":         "",
		"truncated":     string(good[:len(good)/2]),
		"not json":      "hello",
		"no version":    `{"MachineKey":"privkey:` + strings.Repeat("1", 64) + `"}`,
		"future":        `{"Version":99}`,
		"no machinekey": `{"Version":1}`,
		"trailing":      string(good) + "{}",
		"bad id":        `{"Version":1,"MachineKey":"privkey:` + strings.Repeat("1", 64) + `","Profiles":{"a":{"ID":"b"}}}`,
		"missing cur":   `{"Version":1,"MachineKey":"privkey:` + strings.Repeat("1", 64) + `","CurrentProfile":"x"}`,
	}
	for name, in := range cases {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestFileBackendAtomicAndCorrupt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "weftd.state")
	s, err := Open(ctx, NewFileBackend(path))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(f *File) error { f.NewProfile(ipn.NewPrefs()); return nil }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file %v mode %v", err, fi.Mode())
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("temp files left behind: %v", ents)
	}
	// A failed update changes nothing.
	before, _ := os.ReadFile(path)
	if err := s.Update(ctx, func(f *File) error { return errors.New("no") }); err == nil {
		t.Fatal("update error lost")
	}
	s2, err := Open(ctx, NewFileBackend(path))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(s.Snapshot(), s2.Snapshot(), keyCmp); d != "" {
		t.Errorf("reload differs:\n%s", d)
	}
	// Truncated: clear error naming the file, file untouched.
	bad := before[:10]
	os.WriteFile(path, bad, 0o600)
	_, err = Open(ctx, NewFileBackend(path))
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open truncated: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, bad) {
		t.Error("truncated file was rewritten")
	}
}

func TestOpenBackendSpecs(t *testing.T) {
	for spec, want := range map[string]string{"mem:": "mem:", "/x/y.state": "/x/y.state", "": "/d/weftd.state"} {
		b, err := OpenBackend(spec, "/d")
		if err != nil || b.String() != want {
			t.Errorf("OpenBackend(%q) = %v, %v; want %s", spec, b, err, want)
		}
	}
	if _, err := OpenBackend("kube:secret", ""); err == nil || !strings.Contains(err.Error(), "not yet supported") {
		t.Errorf("kube: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(sample())
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add([]byte(`{"Version":1,"MachineKey":"privkey:` + strings.Repeat("a", 64) + `","Profiles":{"x":null}}`))
	f.Add([]byte(`{"Version":1e99}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := Decode(b)
		if err != nil {
			return
		}
		out, err := Encode(st)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := Decode(out); err != nil {
			t.Fatalf("decode of re-encoded state: %v", err)
		}
	})
}
