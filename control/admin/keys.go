package admin

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"weft.dev/weft/control/state"
	"weft.dev/weft/control/store"
)

// Key text tags, as control/state writes them; used to accept a whole key
// where a prefix is expected.
const (
	authKeyTag = "weft-auth-"
	apiKeyTag  = "weft-api-"
)

// keyPrefix reduces a whole key text ("weft-auth-PREFIX-SECRET") or a tagged
// prefix to the bare prefix; anything else is returned unchanged.
func keyPrefix(tag, s string) string {
	s = strings.TrimPrefix(s, tag)
	if p, _, ok := strings.Cut(s, "-"); ok {
		return p
	}
	return s
}

// parseExpiry parses a Go duration or a whole number of days ("90d").
// Empty means zero (the server default).
func parseExpiry(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int64
		n, err = strconv.ParseInt(days, 10, 32)
		if n > 100*365 {
			n = -1 // time.Duration overflows at 292 years
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid expiry %q: use a positive duration like 30m, 24h or 90d", s)
	}
	return d, nil
}

// validTags checks tags look like tag:name, as Tailscale's policy requires.
func validTags(tags []string) error {
	for _, t := range tags {
		if name, ok := strings.CutPrefix(t, "tag:"); !ok || name == "" || strings.ContainsAny(name, " \t,") {
			return fmt.Errorf("invalid tag %q: tags look like tag:server (comma-free, no spaces)", t)
		}
	}
	return nil
}

func (h *handler) preAuthKeyJSON(k store.PreAuthKey, now time.Time) PreAuthKey {
	return PreAuthKey{
		ID: k.ID, Prefix: k.Prefix, User: h.userName(k.UserID),
		Reusable: k.Reusable, Ephemeral: k.Ephemeral, Used: k.Used,
		Tags: nonNil(k.Tags), Expiration: k.Expiration, Expired: expired(k.Expiration, now),
		Created: k.CreatedAt,
	}
}

// listPreAuthKeys answers every key, or with ?user=NAME one user's keys.
func (h *handler) listPreAuthKeys(w http.ResponseWriter, r *http.Request) {
	var uid int64
	if name := r.URL.Query().Get("user"); name != "" {
		u, ok := h.st.UserByName(name)
		if !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no user %q: list users with: weft-control users list", name))
			return
		}
		uid = u.ID
	}
	keys, err := h.db.ListPreAuthKeys(r.Context())
	if err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	now := h.st.Now()
	out := make([]PreAuthKey, 0, len(keys))
	for _, k := range keys {
		if uid == 0 || k.UserID == uid {
			out = append(out, h.preAuthKeyJSON(k, now))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) createPreAuthKey(w http.ResponseWriter, r *http.Request) {
	var req CreatePreAuthKeyRequest
	if !decode(w, r, &req, `{"user":"alice","reusable":false,"ephemeral":false,"tags":["tag:server"],"expiry":"24h"}`) {
		return
	}
	if req.User == "" {
		writeError(w, http.StatusBadRequest, `missing "user": say which user the key registers nodes for, e.g. {"user":"alice"}`)
		return
	}
	u, ok := h.st.UserByName(req.User)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no user %q: create it with: weft-control users create %s", req.User, req.User))
		return
	}
	d, err := parseExpiry(req.Expiry)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := validTags(req.Tags); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	text, k, err := h.st.CreatePreAuthKey(r.Context(), state.NewPreAuthKeyParams{
		UserID: u.ID, Reusable: req.Reusable, Ephemeral: req.Ephemeral, Tags: req.Tags, Expiry: d,
	})
	if err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusCreated, CreatedPreAuthKey{Key: text, PreAuthKey: h.preAuthKeyJSON(k, h.st.Now())})
}

func (h *handler) expirePreAuthKey(w http.ResponseWriter, r *http.Request) {
	prefix := keyPrefix(authKeyTag, r.PathValue("prefix"))
	keys, err := h.db.ListPreAuthKeys(r.Context())
	if err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	i := slices.IndexFunc(keys, func(k store.PreAuthKey) bool { return k.Prefix == prefix })
	if i < 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no pre-auth key with prefix %q: list keys with: weft-control keys list", prefix))
		return
	}
	k := keys[i]
	now := h.st.Now()
	if !expired(k.Expiration, now) {
		if err := h.db.ExpirePreAuthKey(r.Context(), k.ID, now); err != nil {
			fail(w, err, http.StatusInternalServerError)
			return
		}
		k.Expiration = now
	}
	writeJSON(w, http.StatusOK, h.preAuthKeyJSON(k, now))
}

func apiKeyJSON(k store.APIKey, now time.Time) APIKey {
	return APIKey{
		ID: k.ID, Prefix: k.Prefix, Expiration: k.Expiration, Expired: expired(k.Expiration, now),
		Created: k.CreatedAt, LastUsed: k.LastUsed,
	}
}

func (h *handler) listAPIKeys(w http.ResponseWriter, r *http.Request) {
	keys, err := h.db.ListAPIKeys(r.Context())
	if err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	now := h.st.Now()
	out := make([]APIKey, 0, len(keys))
	for _, k := range keys {
		out = append(out, apiKeyJSON(k, now))
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) createAPIKey(w http.ResponseWriter, r *http.Request) {
	var req CreateAPIKeyRequest
	if !decodeOptional(w, r, &req, `{"expiry":"90d"}`) {
		return
	}
	d, err := parseExpiry(req.Expiry)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	text, k, err := h.st.CreateAPIKey(r.Context(), d)
	if err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusCreated, CreatedAPIKey{Key: text, APIKey: apiKeyJSON(k, h.st.Now())})
}

func (h *handler) expireAPIKey(w http.ResponseWriter, r *http.Request) {
	prefix := keyPrefix(apiKeyTag, r.PathValue("prefix"))
	k, err := h.findAPIKey(r.Context(), prefix)
	if err != nil {
		fail(w, err, http.StatusInternalServerError)
		return
	}
	now := h.st.Now()
	if !expired(k.Expiration, now) {
		if err := h.db.ExpireAPIKey(r.Context(), k.ID, now); err != nil {
			fail(w, err, http.StatusInternalServerError)
			return
		}
		k.Expiration = now
	}
	writeJSON(w, http.StatusOK, apiKeyJSON(k, now))
}

func (h *handler) findAPIKey(ctx context.Context, prefix string) (store.APIKey, error) {
	keys, err := h.db.ListAPIKeys(ctx)
	if err != nil {
		return store.APIKey{}, err
	}
	for _, k := range keys {
		if k.Prefix == prefix {
			return k, nil
		}
	}
	return store.APIKey{}, fmt.Errorf("no API key with prefix %q: list keys with: weft-control apikeys list: %w", prefix, store.ErrNotFound)
}
