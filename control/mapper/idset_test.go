package mapper

import (
	"slices"
	"testing"
)

func TestIDSet(t *testing.T) {
	var a, b idSet
	for _, id := range []int64{1, 63, 64, 200} {
		a.add(id)
	}
	for _, id := range []int64{63, 200, 500} {
		b.add(id)
	}
	a.add(-1) // ignored
	var got []int64
	a.eachNotIn(b, func(id int64) { got = append(got, id) })
	if want := []int64{1, 64}; !slices.Equal(got, want) {
		t.Errorf("a-b = %v, want %v", got, want)
	}
	got = nil
	b.eachNotIn(a, func(id int64) { got = append(got, id) })
	if want := []int64{500}; !slices.Equal(got, want) {
		t.Errorf("b-a = %v, want %v", got, want)
	}
	got = nil
	a.eachIn(b, func(id int64) { got = append(got, id) })
	if want := []int64{63, 200}; !slices.Equal(got, want) {
		t.Errorf("a&b = %v, want %v", got, want)
	}
	a.del(63)
	a.del(9999)
	if a.has(63) || !a.has(64) || a.has(9999) || a.has(-3) {
		t.Errorf("after del: %v", a)
	}
}
