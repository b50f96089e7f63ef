package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// timeLayout is fixed-width RFC 3339 in UTC, so text order is time order.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// The ...Arg helpers encode a field for a query argument; zero values become
// NULL so that UNIQUE ignores them and reads give back the zero value.

func timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeLayout)
}

func addrArg(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

func textArg(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func bytesArg(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// jsonArg encodes a list (or raw JSON) as JSON text, NULL when empty.
func jsonArg[T any](list []T) (any, error) {
	if len(list) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func rawArg(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

// decoder turns stored text back into field values, keeping the first error
// so a scan function can decode every column and check once.
type decoder struct {
	err error
}

func (d *decoder) fail(col string, err error) {
	if d.err == nil {
		d.err = fmt.Errorf("decode %s: %w", col, err)
	}
}

func (d *decoder) time(col string, s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s.String)
	if err != nil {
		d.fail(col, err)
	}
	return t.UTC()
}

func (d *decoder) addr(col string, s sql.NullString) netip.Addr {
	if !s.Valid {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s.String)
	if err != nil {
		d.fail(col, err)
	}
	return a
}

func (d *decoder) strings(col string, s sql.NullString) []string {
	return decodeList[string](d, col, s)
}

func (d *decoder) prefixes(col string, s sql.NullString) []netip.Prefix {
	return decodeList[netip.Prefix](d, col, s)
}

func decodeList[T any](d *decoder, col string, s sql.NullString) []T {
	if !s.Valid {
		return nil
	}
	var out []T
	if err := json.Unmarshal([]byte(s.String), &out); err != nil {
		d.fail(col, err)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (d *decoder) raw(s sql.NullString) json.RawMessage {
	if !s.Valid || s.String == "" {
		return nil
	}
	return json.RawMessage(s.String)
}

func (d *decoder) bytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// queryList runs query on the read pool and scans each row; nil when there
// are no rows.
func queryList[T any](ctx context.Context, db *sql.DB, query string, scan func(rowScanner) (T, error)) ([]T, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// mustAffect turns "no row matched" into ErrNotFound.
func mustAffect(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
