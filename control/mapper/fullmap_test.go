package mapper

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"

	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
	"weft.dev/weft/wire/key"
)

// TestFullMapWireMatchesFullMap: the map assembled from cached compressed
// blocks decodes to exactly the JSON of the map encoded whole, wherever the
// node itself sits, and cached blocks follow node changes.
func TestFullMapWireMatchesFullMap(t *testing.T) {
	ctx := context.Background()
	b, err := New(Config{Domain: "weft.test"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.New(ctx, state.Config{Store: store.NewMemory(), OnChange: b.OnChange})
	if err != nil {
		t.Fatal(err)
	}
	b.Start(st)
	u, _ := st.CreateUser(ctx, "u", "", "")
	var ids []int64
	for i := range 150 {
		n, err := st.Register(ctx, state.RegisterParams{MachineKey: key.NewMachine().Public(), NodeKey: key.NewNode().Public(), UserID: u.ID, Hostname: fmt.Sprintf("n%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n.ID)
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	now := time.Unix(1_800_000_000, 0)
	check := func(self int64) {
		t.Helper()
		snap := st.Snapshot()
		whole, err := b.fullMap(self, snap, mapView{}, now)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := b.fullMapWire(self, snap, now)
		if err != nil {
			t.Fatal(err)
		}
		if n := binary.LittleEndian.Uint32(wire); int(n) != len(wire)-4 {
			t.Fatalf("length prefix %d, payload %d", n, len(wire)-4)
		}
		got, err := dec.DecodeAll(wire[4:], nil)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(got) {
			t.Fatalf("self %d: invalid JSON: %.200s", self, got)
		}
		if diff := cmp.Diff(string(whole), string(got)); diff != "" {
			t.Fatalf("self %d: blocks differ from the whole map (-whole +blocks):\n%.2000s", self, diff)
		}
	}
	for _, self := range []int64{ids[0], ids[1], ids[63], ids[64], ids[100], ids[149]} {
		check(self)
	}
	// Changes invalidate cached blocks.
	if _, err := st.Rename(ctx, ids[70], "renamed"); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, ids[5]); err != nil {
		t.Fatal(err)
	}
	check(ids[0])
	check(ids[149])
	// A tailnet of one: the head alone.
	b2, _ := New(Config{Domain: "weft.test"})
	st2, _ := state.New(ctx, state.Config{Store: store.NewMemory(), OnChange: b2.OnChange})
	b2.Start(st2)
	u2, _ := st2.CreateUser(ctx, "u", "", "")
	only, _ := st2.Register(ctx, state.RegisterParams{MachineKey: key.NewMachine().Public(), NodeKey: key.NewNode().Public(), UserID: u2.ID, Hostname: "solo"})
	wire, err := b2.fullMapWire(only.ID, st2.Snapshot(), now)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := dec.DecodeAll(wire[4:], nil)
	whole, _ := b2.fullMap(only.ID, st2.Snapshot(), mapView{}, now)
	if string(got) != string(whole) {
		t.Fatalf("solo map differs:\n%s\n%s", got, whole)
	}
}
