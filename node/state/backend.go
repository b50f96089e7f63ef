package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// ErrNotExist is returned by Backend.Load when nothing was stored yet.
var ErrNotExist = errors.New("no state stored yet")

// Backend stores the state document. Implementations are safe for
// concurrent use; Save replaces the whole document atomically.
type Backend interface {
	// Load returns the stored document, or ErrNotExist.
	Load(ctx context.Context) ([]byte, error)
	// Save stores b, replacing the previous document atomically.
	Save(ctx context.Context, b []byte) error
	// String names where the state lives, for messages ("/var/lib/weft/weftd.state").
	String() string
}

// DefaultFileName is the state file name under --statedir.
const DefaultFileName = "weftd.state"

// OpenBackend interprets a --state value as tailscaled does: "mem:" keeps
// state in memory (the node is ephemeral), "kube:<secret>" names a
// Kubernetes secret, anything else is a file path. An empty spec means
// DefaultFileName under statedir.
func OpenBackend(spec, statedir string) (Backend, error) {
	switch {
	case spec == "" && statedir == "":
		return nil, errors.New("no state location: pass --state=<file> (or --state=mem:) or --statedir=<dir>")
	case spec == "":
		return NewFileBackend(filepath.Join(statedir, DefaultFileName)), nil
	case strings.HasPrefix(spec, "mem:"):
		return NewMem(), nil
	case strings.HasPrefix(spec, "kube:"):
		return nil, fmt.Errorf("--state=%s: Kubernetes secret state is not yet supported by weftd; use a file path or mem:", spec)
	case strings.HasPrefix(spec, "arn:") || strings.HasPrefix(spec, "ssm:"):
		return nil, fmt.Errorf("--state=%s: AWS parameter store state is not supported by weftd; use a file path or mem:", spec)
	}
	return NewFileBackend(spec), nil
}

// FileBackend keeps the document in one file.
type FileBackend struct {
	path string
	mu   sync.Mutex // serialises Save
}

// NewFileBackend returns a backend for path; the file need not exist.
func NewFileBackend(path string) *FileBackend { return &FileBackend{path: path} }

// String returns the file path.
func (b *FileBackend) String() string { return b.path }

// Load reads the file.
func (b *FileBackend) Load(ctx context.Context) ([]byte, error) {
	data, err := os.ReadFile(b.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("read state file %s: %w", b.path, err)
	}
	return data, nil
}

// Save writes data to a temporary file in the same directory, syncs it,
// renames it over the old file and syncs the directory, so that a crash
// leaves either the old or the new document, never a mix.
func (b *FileBackend) Save(ctx context.Context, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	dir := filepath.Dir(b.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(b.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write state file %s: %w", b.path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write state file %s: %w", b.path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write state file %s: %w", b.path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync state file %s: %w", b.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state file %s: %w", b.path, err)
	}
	if err := os.Rename(tmpName, b.path); err != nil {
		return fmt.Errorf("replace state file %s: %w", b.path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: some filesystems refuse to sync directories
		d.Close()
	}
	return nil
}

// Mem keeps the document in memory (--state=mem:).
type Mem struct {
	mu   sync.Mutex
	data []byte // guarded by mu
}

// NewMem returns an empty memory backend.
func NewMem() *Mem { return &Mem{} }

// String returns "mem:".
func (m *Mem) String() string { return "mem:" }

// Load returns the last saved document.
func (m *Mem) Load(ctx context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.data == nil {
		return nil, ErrNotExist
	}
	return append([]byte(nil), m.data...), nil
}

// Save keeps a copy of data.
func (m *Mem) Save(ctx context.Context, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data = append([]byte(nil), data...)
	return nil
}
