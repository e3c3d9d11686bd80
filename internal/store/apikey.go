package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// KeyScope is a permission an API key carries.
type KeyScope string

// Key scopes. Admin carries every other one.
const (
	KeySuppressionsRead  KeyScope = "suppressions:read"
	KeySuppressionsWrite KeyScope = "suppressions:write"
	KeyEventsRead        KeyScope = "events:read"
	KeyEventsWrite       KeyScope = "events:write" // post raw messages and sent volume
	KeyPolicyWrite       KeyScope = "policy:write"
	KeyAdmin             KeyScope = "admin"
)

// KeyScopes lists every key scope.
func KeyScopes() []KeyScope {
	return []KeyScope{KeySuppressionsRead, KeySuppressionsWrite, KeyEventsRead, KeyEventsWrite, KeyPolicyWrite, KeyAdmin}
}

// APIKey is a stored API key; the token itself is never stored.
type APIKey struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	Scopes     []KeyScope `json:"scopes"`
	Tenant     string     `json:"tenant"`
	RateLimit  *float64   `json:"rate_limit"` // requests per second; nil for the server default
	RateBurst  *int       `json:"rate_burst"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// Has reports whether the key carries scope (admin carries all).
func (k APIKey) Has(scope KeyScope) bool {
	return slices.Contains(k.Scopes, scope) || slices.Contains(k.Scopes, KeyAdmin)
}

// NewAPIKey describes a key to create.
type NewAPIKey struct {
	Name      string
	Scopes    []KeyScope
	Tenant    string
	RateLimit *float64
	RateBurst *int
	CreatedBy string
}

// TokenPrefix starts every token, so leaked tokens are easy to recognise.
const TokenPrefix = "bnc_"

// HashToken is how tokens are stored and looked up: tokens carry 256
// random bits, so a plain SHA-256 cannot be reversed or guessed.
func HashToken(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// ErrBadKey means a key description is invalid.
var ErrBadKey = errors.New("store: bad api key")

// CreateAPIKey stores a new key and returns it with its token, which is
// shown this once. ErrConflict if an active key has the same name.
func (db *DB) CreateAPIKey(ctx context.Context, nk NewAPIKey) (APIKey, string, error) {
	if nk.Name == "" || len(nk.Name) > 100 || strings.ContainsAny(nk.Name, " \t\r\n") {
		return APIKey{}, "", fmt.Errorf("%w: name must be 1-100 characters without spaces", ErrBadKey)
	}
	if len(nk.Scopes) == 0 {
		return APIKey{}, "", fmt.Errorf("%w: a key needs at least one scope", ErrBadKey)
	}
	for _, s := range nk.Scopes {
		if !slices.Contains(KeyScopes(), s) {
			return APIKey{}, "", fmt.Errorf("%w: unknown scope %q", ErrBadKey, s)
		}
	}
	if nk.Tenant != "" && !ValidTenant(nk.Tenant) {
		return APIKey{}, "", fmt.Errorf("%w: tenant %q: names are 1-63 of a-z 0-9 . _ -", ErrBadKey, nk.Tenant)
	}
	if nk.RateLimit != nil && *nk.RateLimit <= 0 {
		return APIKey{}, "", fmt.Errorf("%w: rate limit must be positive", ErrBadKey)
	}
	if nk.RateBurst != nil && *nk.RateBurst < 1 {
		return APIKey{}, "", fmt.Errorf("%w: burst must be at least 1", ErrBadKey)
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	token := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	hash := HashToken(token)
	scopes := make([]string, len(nk.Scopes))
	for i, s := range nk.Scopes {
		scopes[i] = string(s)
	}
	var k APIKey
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			INSERT INTO api_keys (name, prefix, hash, scopes, tenant, rate_limit, rate_burst, created_at, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+apiKeyColumns,
			nk.Name, token[:len(TokenPrefix)+6], hash[:], scopes, nk.Tenant, nk.RateLimit, nk.RateBurst, db.now(), nk.CreatedBy)
		if err != nil {
			return err
		}
		if k, err = pgx.CollectExactlyOneRow(rows, scanAPIKey); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify('`+channelAPIKeys+`', '')`)
		return err
	})
	if err != nil {
		return APIKey{}, "", err
	}
	db.keys.flush()
	return k, token, nil
}

const apiKeyColumns = `id, name, prefix, scopes, tenant, rate_limit, rate_burst, created_at, created_by, last_used_at, revoked_at`

func scanAPIKey(row pgx.CollectableRow) (APIKey, error) {
	var k APIKey
	var scopes []string
	err := row.Scan(&k.ID, &k.Name, &k.Prefix, &scopes, &k.Tenant, &k.RateLimit, &k.RateBurst, &k.CreatedAt,
		&k.CreatedBy, &k.LastUsedAt, &k.RevokedAt)
	for _, s := range scopes {
		k.Scopes = append(k.Scopes, KeyScope(s))
	}
	return k, err
}

// ListAPIKeys returns every key, revoked ones too, oldest first.
func (db *DB) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var out []APIKey
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY id`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanAPIKey)
		return err
	})
	return out, err
}

// RevokeAPIKey revokes the active key with this id or name; every replica
// stops accepting it once the notification arrives (at once here).
// ErrNotFound if there is no such active key.
func (db *DB) RevokeAPIKey(ctx context.Context, idOrName string) (APIKey, error) {
	var k APIKey
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `UPDATE api_keys SET revoked_at = $2
			WHERE revoked_at IS NULL AND (name = $1 OR id::text = $1) RETURNING `+apiKeyColumns, idOrName, db.now())
		if err != nil {
			return err
		}
		if k, err = pgx.CollectExactlyOneRow(rows, scanAPIKey); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `SELECT pg_notify('`+channelAPIKeys+`', '')`)
		return err
	})
	if err != nil {
		return APIKey{}, err
	}
	db.keys.flush()
	return k, nil
}

// AuthenticateAPIKey returns the active key whose token this is;
// ErrNotFound for an unknown or revoked token.
func (db *DB) AuthenticateAPIKey(ctx context.Context, token string) (APIKey, error) {
	hash := HashToken(token)
	useCache := db.listening.Load()
	var gen uint64
	if useCache {
		if k, ok, g := db.keys.get(hash); ok {
			return k, nil
		} else {
			gen = g
		}
	}
	var k APIKey
	err := db.read(ctx, func(q *pgxpool.Pool) error {
		rows, err := q.Query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE hash = $1 AND revoked_at IS NULL`, hash[:])
		if err != nil {
			return err
		}
		k, err = pgx.CollectExactlyOneRow(rows, scanAPIKey)
		return err
	})
	if err != nil {
		return APIKey{}, err
	}
	if useCache {
		db.keys.put(hash, gen, k)
	}
	return k, nil
}

// AnyAPIKeys reports whether at least one key is active.
func (db *DB) AnyAPIKeys(ctx context.Context) (bool, error) {
	useCache := db.listening.Load()
	var gen uint64
	if useCache {
		var v, known bool
		if v, known, gen = db.keys.any(); known {
			return v, nil
		}
	}
	var any bool
	err := db.read(ctx, func(q *pgxpool.Pool) error {
		return q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL)`).Scan(&any)
	})
	if err != nil {
		return false, err
	}
	if useCache {
		db.keys.setAny(gen, any)
	}
	return any, nil
}

// TouchAPIKey records that a key was used, at most once a minute per key
// so the hot path does not write on every request.
func (db *DB) TouchAPIKey(ctx context.Context, id int64) error {
	if !db.keys.shouldTouch(id, time.Now()) {
		return nil
	}
	return db.transact(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1`, id, db.now())
		return err
	})
}

// keyCache holds authenticated keys by token hash, and whether any key
// exists. Only used while notifications arrive; every change flushes it.
type keyCache struct {
	mu      sync.Mutex
	gen     uint64
	byHash  map[[32]byte]APIKey
	anyKnow bool
	anyKeys bool
	touched map[int64]time.Time
}

func newKeyCache() *keyCache {
	return &keyCache{byHash: map[[32]byte]APIKey{}, touched: map[int64]time.Time{}}
}

func (c *keyCache) get(h [32]byte) (APIKey, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.byHash[h]
	return k, ok, c.gen
}

func (c *keyCache) put(h [32]byte, gen uint64, k APIKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen && len(c.byHash) < 100000 {
		c.byHash[h] = k
	}
}

func (c *keyCache) any() (v, known bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.anyKeys, c.anyKnow, c.gen
}

func (c *keyCache) setAny(gen uint64, v bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen {
		c.anyKeys, c.anyKnow = v, true
	}
}

func (c *keyCache) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.byHash)
	c.anyKnow = false
}

func (c *keyCache) shouldTouch(id int64, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if last, ok := c.touched[id]; ok && now.Sub(last) < time.Minute {
		return false
	}
	if len(c.touched) > 100000 {
		clear(c.touched)
	}
	c.touched[id] = now
	return true
}
