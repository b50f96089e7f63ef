package admincli

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"
)

// timeLayout is how tables show times, in the local zone.
const timeLayout = "2006-01-02 15:04:05"

// printJSON prints v indented, for --json.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// result prints v as JSON with --json, else the formatted line: the two
// outputs of every command that changes something.
func (e *env) result(v any, format string, args ...any) error {
	if e.g.json {
		return e.printJSON(v)
	}
	_, err := fmt.Fprintf(e.stdout, format, args...)
	return err
}

// table prints an aligned table with a header row.
func (e *env) table(header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	tw.Write([]byte(strings.Join(header, "\t") + "\n"))
	for _, r := range rows {
		tw.Write([]byte(strings.Join(r, "\t") + "\n"))
	}
	return tw.Flush()
}

// when formats a time for a table; zero shows as zero.
func (e *env) when(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.In(e.loc).Format(timeLayout)
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return list(s)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
