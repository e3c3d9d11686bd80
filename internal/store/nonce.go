package store

import (
	"bytes"
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// ClaimNonce records that a webhook provider's nonce came with a body
// (its SHA-256) and is remembered until expires. It reports false when
// the nonce was claimed before, unexpired at now, with another body: a
// signature lifted onto another payload. The same body again is true (the
// provider retrying). Claims live in the database, so every replica and
// every restart sees them. It returns ErrUnavailable when the database
// is down.
func (db *DB) ClaimNonce(ctx context.Context, provider, nonce string, body [32]byte, now, expires time.Time) (bool, error) {
	var stored []byte
	err := db.transact(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO webhook_nonces AS n (provider, nonce, body_sha256, expires_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (provider, nonce) DO UPDATE SET body_sha256 = EXCLUDED.body_sha256, expires_at = EXCLUDED.expires_at
				WHERE n.expires_at <= $5
			RETURNING body_sha256`, provider, clip(nonce, 200), body[:], expires, now).Scan(&stored)
		if err != pgx.ErrNoRows {
			return err
		}
		// Claimed and unexpired (perhaps by a transaction that committed
		// just now): compare with its body.
		return tx.QueryRow(ctx, `SELECT body_sha256 FROM webhook_nonces WHERE provider = $1 AND nonce = $2`,
			provider, clip(nonce, 200)).Scan(&stored)
	})
	if err != nil {
		return false, err
	}
	return bytes.Equal(stored, body[:]), nil
}

// ClaimNonce is DB.ClaimNonce, for receivers that record through a group
// committer.
func (g *GroupCommitter) ClaimNonce(ctx context.Context, provider, nonce string, body [32]byte, now, expires time.Time) (bool, error) {
	return g.db.ClaimNonce(ctx, provider, nonce, body, now, expires)
}
