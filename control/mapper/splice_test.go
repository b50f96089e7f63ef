package mapper

import (
	"encoding/json"
	"testing"
)

func TestSplice(t *testing.T) {
	for _, tc := range []struct {
		in    string
		items []string
		want  string
	}{
		{`{}`, []string{`1`, `2`}, `{"Peers":[1,2]}`},
		{`{"Node":{"ID":1}}`, []string{`{"ID":2}`}, `{"Node":{"ID":1},"Peers":[{"ID":2}]}`},
		{`{"A":1}`, nil, `{"A":1}`},
	} {
		var items [][]byte
		for _, it := range tc.items {
			items = append(items, []byte(it))
		}
		got := string(splice([]byte(tc.in), "Peers", items))
		if got != tc.want || !json.Valid([]byte(got)) {
			t.Errorf("splice(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
