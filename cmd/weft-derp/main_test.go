package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "derper.key")
	k1, err := loadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `"PrivateKey": "privkey:`) {
		t.Fatalf("config = %s", b)
	}
	k2, err := loadOrCreateKey(path)
	if err != nil || k1 != k2 {
		t.Fatalf("reload: %v, same=%v", err, k1 == k2)
	}
	os.WriteFile(path, []byte(`{"PrivateKey":"nope"}`), 0o600)
	if _, err := loadOrCreateKey(path); err == nil {
		t.Fatal("bad config accepted")
	}
}

func TestFlags(t *testing.T) {
	f, err := parseFlags([]string{"-dev"})
	if err != nil || f.addr != ":3340" || serveTLS(f) || f.stunPort != 3478 {
		t.Fatalf("dev flags: %+v %v", f, err)
	}
	f, _ = parseFlags([]string{"-a", "127.0.0.1:8443", "-certmode", "manual"})
	if !serveTLS(f) {
		t.Fatal("manual certmode must serve TLS")
	}
	f, _ = parseFlags([]string{"-a", ":8080"})
	if serveTLS(f) {
		t.Fatal("letsencrypt on :8080 is plain HTTP, as derper")
	}
	mk := filepath.Join(t.TempDir(), "mesh")
	os.WriteFile(mk, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	f, _ = parseFlags([]string{"-c", filepath.Join(t.TempDir(), "k"), "-mesh-psk-file", mk, "-mesh-with", "a,b/c",
		"-verify-client-url", "http://127.0.0.1:1/x", "-bootstrap-dns-names", "x.example,y.example"})
	o, err := options(f, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if o.MeshKey != strings.Repeat("ab", 32) || len(o.MeshWith) != 2 || o.Verify == nil || len(o.BootstrapDNSNames) != 2 {
		t.Fatalf("options: %+v", o)
	}
	if _, err := options(&flags{}, nil); err == nil {
		t.Fatal("missing -c accepted")
	}
	kf := filepath.Join(t.TempDir(), "apikey")
	os.WriteFile(kf, []byte("weft-api-x\n"), 0o600)
	f, _ = parseFlags([]string{"-dev", "-verify-control-url", "https://198.18.1.1", "-verify-control-api-key-file", kf})
	if o, err := options(f, nil); err != nil || o.Verify == nil {
		t.Fatalf("-verify-control-url: %v, Verify set %v", err, o.Verify != nil)
	}
	t.Setenv("WEFT_API_KEY", "")
	f, _ = parseFlags([]string{"-dev", "-verify-control-url", "https://198.18.1.1"})
	if _, err := options(f, nil); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("-verify-control-url without a key: %v", err)
	}
}

func TestRunStops(t *testing.T) {
	f, _ := parseFlags([]string{"-a", "127.0.0.1:0", "-stun-port", "0", "-c", filepath.Join(t.TempDir(), "k")})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, f, slog.New(slog.DiscardHandler)) }()
	time.Sleep(100 * time.Millisecond) // let it start; stopping early is fine too
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
}
