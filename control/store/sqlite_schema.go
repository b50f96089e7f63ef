package store

// migrations[i] takes the schema from version i to version i+1. Append only:
// never edit a migration that has shipped, since databases in the field have
// already run it. Each runs in one transaction with its schema_migrations row.
//
// Conventions: AUTOINCREMENT on every ID so that IDs are never reused (plain
// INTEGER PRIMARY KEY reuses the largest ID after it is deleted); times are
// RFC 3339 UTC text with nanoseconds, NULL for the zero time; lists are JSON
// text, NULL when empty; addresses are text, NULL when absent (so UNIQUE
// allows any number of nodes without, say, IPv6).
var migrations = []string{
	// 1: initial schema.
	`
CREATE TABLE users (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	name         TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL DEFAULT '',
	email        TEXT NOT NULL DEFAULT '',
	created_at   TEXT
);

CREATE TABLE pre_auth_keys (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	prefix     TEXT NOT NULL UNIQUE,
	hash       BLOB,
	-- Keys go with their user; nodes do not (DeleteUser refuses).
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	reusable   INTEGER NOT NULL DEFAULT 0,
	ephemeral  INTEGER NOT NULL DEFAULT 0,
	used       INTEGER NOT NULL DEFAULT 0,
	tags       TEXT,
	expiration TEXT,
	created_at TEXT
);
CREATE INDEX pre_auth_keys_user_id ON pre_auth_keys (user_id);

CREATE TABLE nodes (
	id                INTEGER PRIMARY KEY AUTOINCREMENT,
	machine_key       TEXT NOT NULL,
	node_key          TEXT NOT NULL UNIQUE,
	user_id           INTEGER NOT NULL REFERENCES users (id),
	hostname          TEXT NOT NULL DEFAULT '',
	given_name        TEXT UNIQUE,
	ipv4              TEXT UNIQUE,
	ipv6              TEXT UNIQUE,
	hostinfo          TEXT,
	tags              TEXT,
	-- Not a foreign key: the key may be deleted with its user while a
	-- tagged node it registered lives on; the ID stays as history.
	auth_key_id       INTEGER NOT NULL DEFAULT 0,
	ephemeral         INTEGER NOT NULL DEFAULT 0,
	expiry            TEXT,
	advertised_routes TEXT,
	approved_routes   TEXT,
	created_at        TEXT,
	last_seen         TEXT
);
CREATE INDEX nodes_user_id ON nodes (user_id);
CREATE INDEX nodes_machine_key ON nodes (machine_key);

CREATE TABLE api_keys (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	prefix     TEXT NOT NULL UNIQUE,
	hash       BLOB,
	expiration TEXT,
	created_at TEXT,
	last_used  TEXT
);

CREATE TABLE dns_records (
	id    INTEGER PRIMARY KEY AUTOINCREMENT,
	name  TEXT NOT NULL,
	type  TEXT NOT NULL,
	value TEXT NOT NULL,
	UNIQUE (name, type, value)
);

CREATE TABLE policies (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	data       TEXT NOT NULL,
	created_at TEXT
);

CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`,
}
