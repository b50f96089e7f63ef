package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"weft.dev/weft/wire/key"
)

// CreateUser implements Store.
func (s *SQLite) CreateUser(ctx context.Context, u *User) error {
	id, err := s.insert(ctx, `INSERT INTO users (name, display_name, email, created_at) VALUES (?, ?, ?, ?)`,
		u.Name, u.DisplayName, u.Email, timeArg(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("create user %q: %w", u.Name, err)
	}
	u.ID = id
	return nil
}

func scanUser(sc rowScanner) (User, error) {
	var u User
	var created sql.NullString
	if err := sc.Scan(&u.ID, &u.Name, &u.DisplayName, &u.Email, &created); err != nil {
		return User{}, err
	}
	var d decoder
	u.CreatedAt = d.time("users.created_at", created)
	return u, d.err
}

// ListUsers implements Store.
func (s *SQLite) ListUsers(ctx context.Context) ([]User, error) {
	out, err := queryList(ctx, s.reader,
		`SELECT id, name, display_name, email, created_at FROM users ORDER BY id`, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return out, nil
}

// DeleteUser implements Store. The user's pre-auth keys are deleted with it.
func (s *SQLite) DeleteUser(ctx context.Context, id int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var owned int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM nodes WHERE user_id = ?`, id).Scan(&owned); err != nil {
			return err
		}
		if owned > 0 {
			if err := userExists(ctx, tx, id); err != nil {
				return err
			}
			return userOwnsNodesErr(owned)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	return nil
}

// userExists fails with ErrNotFound unless user id exists. The foreign key
// would catch a dangling reference too, but not say which one.
func userExists(ctx context.Context, tx *sql.Tx, id int64) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	return err
}

// useKey marks pre-auth key id used (nothing when id is 0), refusing a
// single-use key that already was. Run inside the transaction that writes
// the node, which is what makes two registrations racing on one single-use
// key end with exactly one node.
func useKey(ctx context.Context, tx *sql.Tx, id int64) error {
	if id == 0 {
		return nil
	}
	var prefix string
	var reusable, used bool
	err := tx.QueryRowContext(ctx, `SELECT prefix, reusable, used FROM pre_auth_keys WHERE id = ?`, id).
		Scan(&prefix, &reusable, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("pre-auth key %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return err
	}
	if used && !reusable {
		return keyUsedErr(prefix)
	}
	_, err = tx.ExecContext(ctx, `UPDATE pre_auth_keys SET used = 1 WHERE id = ?`, id)
	return err
}

// nodeArgs encodes every column of n but id, in nodeCols order.
func nodeArgs(n *Node) ([]any, error) {
	tags, err := jsonArg(n.Tags)
	if err != nil {
		return nil, fmt.Errorf("encode tags: %w", err)
	}
	adv, err := jsonArg(n.AdvertisedRoutes)
	if err != nil {
		return nil, fmt.Errorf("encode advertised routes: %w", err)
	}
	appr, err := jsonArg(n.ApprovedRoutes)
	if err != nil {
		return nil, fmt.Errorf("encode approved routes: %w", err)
	}
	return []any{
		n.MachineKey.String(), n.NodeKey.String(), n.UserID, n.Hostname, textArg(n.GivenName),
		addrArg(n.IPv4), addrArg(n.IPv6), rawArg(n.Hostinfo), tags, n.AuthKeyID, n.Ephemeral,
		timeArg(n.Expiry), adv, appr, timeArg(n.CreatedAt), timeArg(n.LastSeen),
	}, nil
}

// nodeCols are the nodes columns after id, in nodeArgs order.
const nodeCols = `machine_key, node_key, user_id, hostname, given_name, ipv4, ipv6, hostinfo, tags,
	auth_key_id, ephemeral, expiry, advertised_routes, approved_routes, created_at, last_seen`

func scanNode(sc rowScanner) (Node, error) {
	var n Node
	var mk, nk string
	var given, v4, v6, hostinfo, tags, expiry, adv, appr, created, seen sql.NullString
	err := sc.Scan(&n.ID, &mk, &nk, &n.UserID, &n.Hostname, &given, &v4, &v6, &hostinfo, &tags,
		&n.AuthKeyID, &n.Ephemeral, &expiry, &adv, &appr, &created, &seen)
	if err != nil {
		return Node{}, err
	}
	var d decoder
	if n.MachineKey, err = key.ParseMachinePublic(mk); err != nil {
		d.fail("nodes.machine_key", err)
	}
	if n.NodeKey, err = key.ParseNodePublic(nk); err != nil {
		d.fail("nodes.node_key", err)
	}
	n.GivenName = given.String
	n.IPv4 = d.addr("nodes.ipv4", v4)
	n.IPv6 = d.addr("nodes.ipv6", v6)
	n.Hostinfo = d.raw(hostinfo)
	n.Tags = d.strings("nodes.tags", tags)
	n.Expiry = d.time("nodes.expiry", expiry)
	n.AdvertisedRoutes = d.prefixes("nodes.advertised_routes", adv)
	n.ApprovedRoutes = d.prefixes("nodes.approved_routes", appr)
	n.CreatedAt = d.time("nodes.created_at", created)
	n.LastSeen = d.time("nodes.last_seen", seen)
	if d.err != nil {
		return Node{}, fmt.Errorf("node %d: %w", n.ID, d.err)
	}
	return n, nil
}

// CreateNode implements Store. A non-zero useKeyID names a pre-auth key that
// is marked used in the same transaction; if the key is single-use and
// already used, CreateNode fails with ErrConflict and stores nothing.
func (s *SQLite) CreateNode(ctx context.Context, n *Node, useKeyID int64) error {
	args, err := nodeArgs(n)
	if err != nil {
		return fmt.Errorf("create node %s: %w", nodeName(n), err)
	}
	var id int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := userExists(ctx, tx, n.UserID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx,
			`INSERT INTO nodes (`+nodeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, args...)
		if err != nil {
			return sqlErr(err)
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		return useKey(ctx, tx, useKeyID)
	})
	if err != nil {
		return fmt.Errorf("create node %s: %w", nodeName(n), err)
	}
	n.ID = id
	return nil
}

// UpdateNode implements Store: it replaces the stored node with ID n.ID and,
// like CreateNode, marks pre-auth key useKeyID used.
func (s *SQLite) UpdateNode(ctx context.Context, n *Node, useKeyID int64) error {
	args, err := nodeArgs(n)
	if err != nil {
		return fmt.Errorf("update node %d: %w", n.ID, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE nodes SET (`+nodeCols+`) =
			(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?`, append(args, n.ID)...)
		if err != nil {
			if errors.Is(sqlErr(err), ErrConflict) {
				return sqlErr(err)
			}
			// Most likely the foreign key: name the missing user.
			if uerr := userExists(ctx, tx, n.UserID); uerr != nil {
				return uerr
			}
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		return useKey(ctx, tx, useKeyID)
	})
	if err != nil {
		return fmt.Errorf("update node %d: %w", n.ID, err)
	}
	return nil
}

// DeleteNode implements Store.
func (s *SQLite) DeleteNode(ctx context.Context, id int64) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE id = ?`, id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("delete node %d: %w", id, err)
	}
	return nil
}

// ListNodes implements Store.
func (s *SQLite) ListNodes(ctx context.Context) ([]Node, error) {
	out, err := queryList(ctx, s.reader, `SELECT id, `+nodeCols+` FROM nodes ORDER BY id`, scanNode)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return out, nil
}
