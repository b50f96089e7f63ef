package state

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"weft.dev/weft/control/store"
)

// Key text forms. Hex only, so a key can never contain "--TL", which the
// official client would cut off as a tailnet-lock wrapping (control.md §4.1).
// The prefix part is public (shown in listings); only a SHA-256 of the whole
// key is stored. SHA-256 rather than bcrypt: the secret has 192 bits of
// entropy, so a slow hash adds nothing but ~60 ms per registration.
const (
	authKeyTag = "weft-auth-"
	apiKeyTag  = "weft-api-"
	prefixLen  = 12 // hex chars
	secretLen  = 48 // hex chars (192 bits)
)

// Errors from auth-key validation, shown to the user by `tailscale up`.
var (
	ErrKeyInvalid = errors.New("invalid auth key")
	ErrKeyExpired = errors.New("auth key expired")
	ErrKeyUsed    = errors.New("auth key already used")
)

func newSecretKey(tag string) (text, prefix string, hash []byte) {
	b := make([]byte, (prefixLen+secretLen)/2)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	h := hex.EncodeToString(b)
	prefix = h[:prefixLen]
	text = tag + prefix + "-" + h[prefixLen:]
	sum := sha256.Sum256([]byte(text))
	return text, prefix, sum[:]
}

// splitKey returns the prefix of a key text of the given tag.
func splitKey(tag, text string) (prefix string, ok bool) {
	rest, ok := strings.CutPrefix(text, tag)
	if !ok || len(rest) != prefixLen+1+secretLen || rest[prefixLen] != '-' {
		return "", false
	}
	return rest[:prefixLen], true
}

func hashMatches(text string, want []byte) bool {
	sum := sha256.Sum256([]byte(text))
	return subtle.ConstantTimeCompare(sum[:], want) == 1
}

// NewPreAuthKeyParams describe a pre-auth key to create.
type NewPreAuthKeyParams struct {
	UserID    int64
	Reusable  bool
	Ephemeral bool
	Tags      []string
	// Expiry is how long the key is valid; zero means one hour, as
	// headscale's default.
	Expiry time.Duration
}

// CreatePreAuthKey creates a key and returns its text, which is shown once.
func (s *State) CreatePreAuthKey(ctx context.Context, p NewPreAuthKeyParams) (string, store.PreAuthKey, error) {
	if _, ok := s.User(p.UserID); !ok {
		return "", store.PreAuthKey{}, fmt.Errorf("user %d: %w", p.UserID, ErrNotFound)
	}
	for _, t := range p.Tags {
		if !strings.HasPrefix(t, "tag:") || len(t) == len("tag:") {
			return "", store.PreAuthKey{}, fmt.Errorf("invalid tag %q: tags look like tag:name", t)
		}
	}
	if p.Expiry == 0 {
		p.Expiry = time.Hour
	}
	if p.Expiry < 0 {
		return "", store.PreAuthKey{}, fmt.Errorf("expiry %s is negative", p.Expiry)
	}
	text, prefix, hash := newSecretKey(authKeyTag)
	now := s.cfg.Clock.Now()
	k := store.PreAuthKey{
		Prefix: prefix, Hash: hash, UserID: p.UserID,
		Reusable: p.Reusable, Ephemeral: p.Ephemeral, Tags: slices.Clone(p.Tags),
		Expiration: now.Add(p.Expiry), CreatedAt: now,
	}
	if err := s.cfg.Store.CreatePreAuthKey(ctx, &k); err != nil {
		return "", store.PreAuthKey{}, fmt.Errorf("create auth key: %w", err)
	}
	return text, k, nil
}

// CheckPreAuthKey validates a key text: unknown → ErrKeyInvalid, past its
// expiration → ErrKeyExpired, single-use and spent → ErrKeyUsed.
func (s *State) CheckPreAuthKey(ctx context.Context, text string) (store.PreAuthKey, error) {
	prefix, ok := splitKey(authKeyTag, text)
	if !ok {
		return store.PreAuthKey{}, ErrKeyInvalid
	}
	k, err := s.cfg.Store.GetPreAuthKey(ctx, prefix)
	if errors.Is(err, store.ErrNotFound) {
		return store.PreAuthKey{}, ErrKeyInvalid
	}
	if err != nil {
		return store.PreAuthKey{}, fmt.Errorf("look up auth key: %w", err)
	}
	if !hashMatches(text, k.Hash) {
		return store.PreAuthKey{}, ErrKeyInvalid
	}
	if !k.Expiration.IsZero() && !k.Expiration.After(s.cfg.Clock.Now()) {
		return store.PreAuthKey{}, ErrKeyExpired
	}
	if !k.Reusable && k.Used {
		return store.PreAuthKey{}, ErrKeyUsed
	}
	return k, nil
}

// CreateAPIKey creates an admin API key valid for d (zero: 90 days).
func (s *State) CreateAPIKey(ctx context.Context, d time.Duration) (string, store.APIKey, error) {
	if d == 0 {
		d = 90 * 24 * time.Hour
	}
	text, prefix, hash := newSecretKey(apiKeyTag)
	now := s.cfg.Clock.Now()
	k := store.APIKey{Prefix: prefix, Hash: hash, Expiration: now.Add(d), CreatedAt: now}
	if err := s.cfg.Store.CreateAPIKey(ctx, &k); err != nil {
		return "", store.APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	return text, k, nil
}

// CheckAPIKey validates an admin API bearer key.
func (s *State) CheckAPIKey(ctx context.Context, text string) (store.APIKey, error) {
	prefix, ok := splitKey(apiKeyTag, text)
	if !ok {
		return store.APIKey{}, errors.New("invalid api key")
	}
	k, err := s.cfg.Store.GetAPIKey(ctx, prefix)
	if err != nil || !hashMatches(text, k.Hash) {
		return store.APIKey{}, errors.New("invalid api key")
	}
	if !k.Expiration.IsZero() && !k.Expiration.After(s.cfg.Clock.Now()) {
		return store.APIKey{}, errors.New("api key expired")
	}
	return k, nil
}
