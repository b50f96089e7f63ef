// Package store persists weft-control's durable state (users, nodes,
// pre-auth keys, API keys, DNS records, policy history, server settings)
// behind the small Store interface, with an SQLite implementation (the
// default, WAL mode, versioned migrations) and an in-memory one for tests.
// A PostgreSQL implementation can be added beside them without touching
// callers.
//
// Every write method returns only after the write is committed. The store
// does not own the live node table: control/state loads it at start and is
// its single writer. This package imports only wire/key and the standard
// library (plus the SQL driver).
package store
