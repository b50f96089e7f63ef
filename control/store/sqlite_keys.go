package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// insert runs one INSERT in a write transaction and returns the new row's ID.
func (s *SQLite) insert(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return sqlErr(err)
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// updateOne runs one UPDATE or DELETE that must match a row.
func (s *SQLite) updateOne(ctx context.Context, query string, args ...any) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return sqlErr(err)
		}
		return mustAffect(res)
	})
}

// getOne reads a single row, mapping no row to ErrNotFound.
func getOne[T any](ctx context.Context, db *sql.DB, scan func(rowScanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(db.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, ErrNotFound
	}
	return v, err
}

const preAuthCols = `id, prefix, hash, user_id, reusable, ephemeral, used, tags, expiration, created_at`

func scanPreAuthKey(sc rowScanner) (PreAuthKey, error) {
	var k PreAuthKey
	var tags, exp, created sql.NullString
	err := sc.Scan(&k.ID, &k.Prefix, &k.Hash, &k.UserID, &k.Reusable, &k.Ephemeral, &k.Used, &tags, &exp, &created)
	if err != nil {
		return PreAuthKey{}, err
	}
	var d decoder
	k.Hash = d.bytes(k.Hash)
	k.Tags = d.strings("pre_auth_keys.tags", tags)
	k.Expiration = d.time("pre_auth_keys.expiration", exp)
	k.CreatedAt = d.time("pre_auth_keys.created_at", created)
	return k, d.err
}

// CreatePreAuthKey implements Store.
func (s *SQLite) CreatePreAuthKey(ctx context.Context, k *PreAuthKey) error {
	tags, err := jsonArg(k.Tags)
	if err != nil {
		return fmt.Errorf("create pre-auth key %q: encode tags: %w", k.Prefix, err)
	}
	var id int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, k.UserID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO pre_auth_keys
			(prefix, hash, user_id, reusable, ephemeral, used, tags, expiration, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.Prefix, bytesArg(k.Hash), k.UserID, k.Reusable, k.Ephemeral, k.Used, tags,
			timeArg(k.Expiration), timeArg(k.CreatedAt))
		if err != nil {
			return sqlErr(err)
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("create pre-auth key %q: %w", k.Prefix, err)
	}
	k.ID = id
	return nil
}

// GetPreAuthKey implements Store.
func (s *SQLite) GetPreAuthKey(ctx context.Context, prefix string) (PreAuthKey, error) {
	k, err := getOne(ctx, s.reader, scanPreAuthKey,
		`SELECT `+preAuthCols+` FROM pre_auth_keys WHERE prefix = ?`, prefix)
	if err != nil {
		return PreAuthKey{}, fmt.Errorf("get pre-auth key %q: %w", prefix, err)
	}
	return k, nil
}

// ListPreAuthKeys implements Store.
func (s *SQLite) ListPreAuthKeys(ctx context.Context) ([]PreAuthKey, error) {
	out, err := queryList(ctx, s.reader, `SELECT `+preAuthCols+` FROM pre_auth_keys ORDER BY id`, scanPreAuthKey)
	if err != nil {
		return nil, fmt.Errorf("list pre-auth keys: %w", err)
	}
	return out, nil
}

// ExpirePreAuthKey implements Store: it sets the key's expiration to at.
func (s *SQLite) ExpirePreAuthKey(ctx context.Context, id int64, at time.Time) error {
	if err := s.updateOne(ctx, `UPDATE pre_auth_keys SET expiration = ? WHERE id = ?`, timeArg(at), id); err != nil {
		return fmt.Errorf("expire pre-auth key %d: %w", id, err)
	}
	return nil
}

const apiKeyCols = `id, prefix, hash, expiration, created_at, last_used`

func scanAPIKey(sc rowScanner) (APIKey, error) {
	var k APIKey
	var exp, created, used sql.NullString
	if err := sc.Scan(&k.ID, &k.Prefix, &k.Hash, &exp, &created, &used); err != nil {
		return APIKey{}, err
	}
	var d decoder
	k.Hash = d.bytes(k.Hash)
	k.Expiration = d.time("api_keys.expiration", exp)
	k.CreatedAt = d.time("api_keys.created_at", created)
	k.LastUsed = d.time("api_keys.last_used", used)
	return k, d.err
}

// CreateAPIKey implements Store.
func (s *SQLite) CreateAPIKey(ctx context.Context, k *APIKey) error {
	id, err := s.insert(ctx, `INSERT INTO api_keys (prefix, hash, expiration, created_at, last_used)
		VALUES (?, ?, ?, ?, ?)`,
		k.Prefix, bytesArg(k.Hash), timeArg(k.Expiration), timeArg(k.CreatedAt), timeArg(k.LastUsed))
	if err != nil {
		return fmt.Errorf("create API key %q: %w", k.Prefix, err)
	}
	k.ID = id
	return nil
}

// GetAPIKey implements Store.
func (s *SQLite) GetAPIKey(ctx context.Context, prefix string) (APIKey, error) {
	k, err := getOne(ctx, s.reader, scanAPIKey, `SELECT `+apiKeyCols+` FROM api_keys WHERE prefix = ?`, prefix)
	if err != nil {
		return APIKey{}, fmt.Errorf("get API key %q: %w", prefix, err)
	}
	return k, nil
}

// ListAPIKeys implements Store.
func (s *SQLite) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	out, err := queryList(ctx, s.reader, `SELECT `+apiKeyCols+` FROM api_keys ORDER BY id`, scanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return out, nil
}

// ExpireAPIKey implements Store: it sets the key's expiration to at.
func (s *SQLite) ExpireAPIKey(ctx context.Context, id int64, at time.Time) error {
	if err := s.updateOne(ctx, `UPDATE api_keys SET expiration = ? WHERE id = ?`, timeArg(at), id); err != nil {
		return fmt.Errorf("expire API key %d: %w", id, err)
	}
	return nil
}

// TouchAPIKey implements Store: it records at as the key's last use.
func (s *SQLite) TouchAPIKey(ctx context.Context, id int64, at time.Time) error {
	if err := s.updateOne(ctx, `UPDATE api_keys SET last_used = ? WHERE id = ?`, timeArg(at), id); err != nil {
		return fmt.Errorf("touch API key %d: %w", id, err)
	}
	return nil
}

func scanDNSRecord(sc rowScanner) (DNSRecord, error) {
	var r DNSRecord
	err := sc.Scan(&r.ID, &r.Name, &r.Type, &r.Value)
	return r, err
}

// CreateDNSRecord implements Store. A record identical in name, type and
// value to an existing one is a conflict.
func (s *SQLite) CreateDNSRecord(ctx context.Context, r *DNSRecord) error {
	id, err := s.insert(ctx, `INSERT INTO dns_records (name, type, value) VALUES (?, ?, ?)`, r.Name, r.Type, r.Value)
	if err != nil {
		return fmt.Errorf("create DNS record %s %s: %w", r.Name, r.Type, err)
	}
	r.ID = id
	return nil
}

// ListDNSRecords implements Store.
func (s *SQLite) ListDNSRecords(ctx context.Context) ([]DNSRecord, error) {
	out, err := queryList(ctx, s.reader, `SELECT id, name, type, value FROM dns_records ORDER BY id`, scanDNSRecord)
	if err != nil {
		return nil, fmt.Errorf("list DNS records: %w", err)
	}
	return out, nil
}

// DeleteDNSRecord implements Store.
func (s *SQLite) DeleteDNSRecord(ctx context.Context, id int64) error {
	if err := s.updateOne(ctx, `DELETE FROM dns_records WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete DNS record %d: %w", id, err)
	}
	return nil
}

func scanPolicy(sc rowScanner) (Policy, error) {
	var p Policy
	var created sql.NullString
	if err := sc.Scan(&p.ID, &p.Data, &created); err != nil {
		return Policy{}, err
	}
	var d decoder
	p.CreatedAt = d.time("policies.created_at", created)
	return p, d.err
}

// PutPolicy implements Store.
func (s *SQLite) PutPolicy(ctx context.Context, p *Policy) error {
	id, err := s.insert(ctx, `INSERT INTO policies (data, created_at) VALUES (?, ?)`, p.Data, timeArg(p.CreatedAt))
	if err != nil {
		return fmt.Errorf("put policy: %w", err)
	}
	p.ID = id
	return nil
}

// CurrentPolicy implements Store.
func (s *SQLite) CurrentPolicy(ctx context.Context) (Policy, error) {
	p, err := getOne(ctx, s.reader, scanPolicy, `SELECT id, data, created_at FROM policies ORDER BY id DESC LIMIT 1`)
	if err != nil {
		return Policy{}, fmt.Errorf("current policy: %w", err)
	}
	return p, nil
}

// ListPolicies implements Store, oldest first.
func (s *SQLite) ListPolicies(ctx context.Context) ([]Policy, error) {
	out, err := queryList(ctx, s.reader, `SELECT id, data, created_at FROM policies ORDER BY id`, scanPolicy)
	if err != nil {
		return nil, fmt.Errorf("list policies: %w", err)
	}
	return out, nil
}

// Setting implements Store.
func (s *SQLite) Setting(ctx context.Context, name string) (string, error) {
	var v string
	err := s.reader.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("setting %q: %w", name, err)
	}
	return v, nil
}

// PutSetting implements Store.
func (s *SQLite) PutSetting(ctx context.Context, name, value string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
		return err
	})
	if err != nil {
		return fmt.Errorf("put setting %q: %w", name, err)
	}
	return nil
}
