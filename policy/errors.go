package policy

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a policy file, located by 1-based line and
// byte column.
type Error struct {
	Line int
	Col  int
	Msg  string
}

// Error formats the problem as "line:col: message".
func (e Error) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg)
}

// Errors is every problem found in one policy file, in file order.
type Errors []Error

// Error lists every problem, one per line.
func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// position converts byte offsets into line:column the way hujson's own
// syntax errors do, so both kinds of error read the same.
type position struct {
	src []byte
}

func (p position) at(off int) (line, col int) {
	off = min(max(off, 0), len(p.src))
	line = 1 + bytes.Count(p.src[:off], []byte("\n"))
	col = 1 + off - (bytes.LastIndexByte(p.src[:off], '\n') + 1)
	return line, col
}

func sortErrors(es Errors) {
	slices.SortStableFunc(es, func(a, b Error) int {
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Col, b.Col)
	})
}
