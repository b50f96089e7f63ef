package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"weft.dev/weft/node/ipn"
	"weft.dev/weft/wire/key"
)

// Store is the daemon's one owner of persisted state: it holds the decoded
// document and writes every change through its Backend before returning.
type Store struct {
	backend Backend

	mu sync.Mutex
	// guarded by mu:
	file *File
}

// Open loads the state from b, creating a fresh document (new machine key,
// no profiles) when nothing is stored yet. A stored document that cannot be
// decoded is an error that names the backend; the document is left as is.
func Open(ctx context.Context, b Backend) (*Store, error) {
	data, err := b.Load(ctx)
	switch {
	case errors.Is(err, ErrNotExist):
		f := &File{Version: CurrentVersion, MachineKey: key.NewMachine(), Profiles: map[ipn.ProfileID]*Profile{}}
		s := &Store{backend: b, file: f}
		if err := s.saveLocked(ctx, f); err != nil {
			return nil, err
		}
		return s, nil
	case err != nil:
		return nil, err
	}
	f, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w; weftd will not overwrite it: restore it from a backup, or move it aside to start as a new node (you will have to log in again)", b, err)
	}
	return &Store{backend: b, file: f}, nil
}

// Backend returns the store's backend.
func (s *Store) Backend() Backend { return s.backend }

// Snapshot returns a deep copy of the current document.
func (s *Store) Snapshot() *File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.Clone()
}

// Update applies f to a copy of the document and saves the result; the
// in-memory document changes only if the save succeeds.
func (s *Store) Update(ctx context.Context, f func(*File) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.file.Clone()
	if err := f(c); err != nil {
		return err
	}
	return s.saveLocked(ctx, c)
}

func (s *Store) saveLocked(ctx context.Context, f *File) error {
	b, err := Encode(f)
	if err != nil {
		return err
	}
	if err := s.backend.Save(ctx, b); err != nil {
		return err
	}
	s.file = f
	return nil
}

// NewProfileID returns a fresh random profile ID.
func NewProfileID() ipn.ProfileID {
	var b [2]byte
	rand.Read(b[:])
	return ipn.ProfileID(hex.EncodeToString(b[:]))
}
