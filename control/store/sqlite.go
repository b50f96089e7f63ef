package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite is the default Store: one SQLite file in WAL mode.
//
// Writes go through a single connection (writer), so they are serialized in
// Go rather than by SQLite's lock and never fail with SQLITE_BUSY within one
// process; every write transaction starts with BEGIN IMMEDIATE so that a
// second process on the same file waits on the busy timeout instead of
// failing half-way. Reads use a separate pool (reader) and, thanks to WAL,
// see every committed write without blocking it. synchronous=FULL makes each
// commit fsync the WAL before the method returns.
type SQLite struct {
	path   string
	log    *slog.Logger
	writer *sql.DB // MaxOpenConns(1)
	reader *sql.DB // query_only connections
}

var _ Store = (*SQLite)(nil)

// ErrSchemaTooNew is returned by OpenSQLite when the database was written by
// a newer weft-control than this one.
var ErrSchemaTooNew = errors.New("database schema is newer than this weft-control")

// busyTimeoutMS bounds how long a connection waits on another process's
// lock before failing with SQLITE_BUSY.
const busyTimeoutMS = 10000

// readerConns caps the read pool. Reads are short; a few connections keep
// long-poll map builders from queueing behind one another.
const readerConns = 4

// OpenSQLite opens (creating if needed) the SQLite database at path and
// brings its schema up to date. A file that is not a healthy SQLite database
// is reported without being modified, and so is one whose schema is newer
// than this binary (ErrSchemaTooNew). logger may be nil.
func OpenSQLite(ctx context.Context, path string, logger *slog.Logger) (*SQLite, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("open store: invalid database path %q: want a plain file path without '?' or '#'", path)
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	s := &SQLite{path: path, log: logger}
	var err error
	// The reader goes first: it cannot write, so it can vet the file (health
	// and schema version) before anything that might modify it is opened.
	s.reader, err = openPool(path, readerDSN(path), readerConns)
	if err != nil {
		return nil, err
	}
	if err := s.vet(ctx); err != nil {
		s.reader.Close()
		return nil, err
	}
	s.writer, err = openPool(path, writerDSN(path), 1)
	if err != nil {
		s.reader.Close()
		return nil, err
	}
	if err := s.writer.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func writerDSN(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeoutMS))
	q.Set("_foreign_keys", "1")
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_txlock", "immediate")
	return path + "?" + q.Encode()
}

func readerDSN(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeoutMS))
	q.Set("_query_only", "1")
	return path + "?" + q.Encode()
}

func openPool(path, dsn string, conns int) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	// Connections are never recycled by age: each one holds the pragmas set
	// at open, and reopening costs a schema parse for nothing.
	db.SetConnMaxLifetime(0)
	return db, nil
}

// sqliteMagic starts every SQLite 3 database file.
const sqliteMagic = "SQLite format 3\x00"

// checkHeader rejects, without writing to it, a non-empty file at path that
// does not start like an SQLite database. A missing or empty file is a new
// database. Deeper damage is found by vet.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if fi.IsDir() {
		return fmt.Errorf("open store %s: is a directory, want a database file path", path)
	}
	if fi.Size() == 0 {
		return nil
	}
	hdr := make([]byte, 100) // the fixed database header
	if _, err := io.ReadFull(f, hdr); err != nil || !bytes.HasPrefix(hdr, []byte(sqliteMagic)) {
		return notDatabaseErr(path, fmt.Errorf("%d bytes, no SQLite header", fi.Size()))
	}
	return nil
}

func notDatabaseErr(path string, cause error) error {
	return fmt.Errorf("open store %s: the file is not a valid weft-control SQLite database (left unchanged): %w; "+
		"restore it from a backup, or move it aside to start with an empty database", path, cause)
}

// vet checks, through the read-only pool, that the database is intact and
// that its schema is not newer than this binary.
func (s *SQLite) vet(ctx context.Context) error {
	// quick_check reads every page (O(file size), milliseconds for a
	// control-server database) and catches truncation and most corruption
	// before a write could make it worse.
	rows, err := s.reader.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return s.openErr(err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return s.openErr(err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Close(); err != nil {
		return s.openErr(err)
	}
	if err := rows.Err(); err != nil {
		return s.openErr(err)
	}
	if len(problems) > 0 {
		if len(problems) > 3 {
			problems = append(problems[:3], "...")
		}
		return notDatabaseErr(s.path, fmt.Errorf("integrity check failed: %s", strings.Join(problems, "; ")))
	}
	v, err := schemaVersion(ctx, s.reader)
	if err != nil {
		return s.openErr(err)
	}
	if v > len(migrations) {
		return fmt.Errorf("open store %s: schema version %d, but this weft-control knows versions up to %d: %w; "+
			"upgrade weft-control to the release that wrote this database (or newer)", s.path, v, len(migrations), ErrSchemaTooNew)
	}
	return nil
}

// openErr wraps an error met while opening, pointing at the file when
// SQLite says it is damaged.
func (s *SQLite) openErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return notDatabaseErr(s.path, err)
		case sqlite3.SQLITE_CANTOPEN:
			return fmt.Errorf("open store %s: %w; check that its directory exists and is writable by weft-control", s.path, err)
		}
	}
	return fmt.Errorf("open store %s: %w", s.path, err)
}

// schemaVersion is the highest applied migration, 0 for a new database.
func schemaVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var n int
	err := q.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	var v int
	err = q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// migrate applies the pending migrations, each in its own transaction
// together with its schema_migrations row, so a crash leaves the database at
// a version boundary.
func (s *SQLite) migrate(ctx context.Context) error {
	for {
		applied, err := s.migrateOne(ctx)
		if err != nil {
			return err
		}
		if applied == 0 {
			return nil
		}
		s.log.Info("store migration applied", "path", s.path, "version", applied)
	}
}

// migrateOne applies the next pending migration and returns its version, or
// 0 when there is none.
func (s *SQLite) migrateOne(ctx context.Context) (int, error) {
	applied := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Re-read under the write lock: another process may have migrated.
		v, err := schemaVersion(ctx, tx)
		if err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("schema version %d, but this weft-control knows versions up to %d: %w; upgrade weft-control",
				v, len(migrations), ErrSchemaTooNew)
		}
		if v == len(migrations) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at TEXT NOT NULL
		)`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, applied_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))`,
			v+1); err != nil {
			return err
		}
		applied = v + 1
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("migrate store %s: %w", s.path, err)
	}
	return applied, nil
}

// write runs f in a write transaction on the single writer connection and
// commits it. Errors from f are returned as they are (after rollback).
func (s *SQLite) write(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// sqlErr maps constraint failures to ErrConflict (naming the column) and
// passes other errors through.
func sqlErr(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		// The message ends "UNIQUE constraint failed: t.a, t.b (2067)";
		// the first column names the conflict.
		msg := se.Error()
		if i := strings.LastIndex(msg, "failed: "); i >= 0 {
			col, _, _ := strings.Cut(msg[i+len("failed: "):], ",")
			col, _, _ = strings.Cut(col, " ")
			return conflictErr(col)
		}
		return fmt.Errorf("%v: %w", err, ErrConflict)
	}
	return err
}

// Close implements Store. It closes the read pool, then the writer, whose
// close checkpoints the WAL into the main file.
func (s *SQLite) Close() error {
	var errs []error
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}
