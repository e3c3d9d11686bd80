package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// SubscriptionClaimTimeout is how long a claim to confirm a subscription
// holds before another caller may take it over (its holder died).
const SubscriptionClaimTimeout = time.Minute

// ClaimSubscription reports whether the caller should confirm a
// provider's subscription to topic: true when it was never confirmed and
// no one is confirming it now (a claim older than SubscriptionClaimTimeout
// is taken over). A true claim must be settled with SettleSubscription.
// It returns ErrUnavailable when the database is down.
func (db *DB) ClaimSubscription(ctx context.Context, provider, topic string, now time.Time) (bool, error) {
	claimed := false
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var ok bool
		err := tx.QueryRow(ctx, `
			INSERT INTO webhook_subscriptions AS w (provider, topic, claimed_at) VALUES ($1, $2, $3)
			ON CONFLICT (provider, topic) DO UPDATE SET claimed_at = EXCLUDED.claimed_at
				WHERE w.confirmed_at IS NULL AND w.claimed_at <= $4
			RETURNING true`, provider, clip(topic, 1000), now, now.Add(-SubscriptionClaimTimeout)).Scan(&ok)
		if errors.Is(err, pgx.ErrNoRows) {
			claimed = false
			return nil
		}
		claimed = ok
		return err
	})
	return claimed, err
}

// SettleSubscription ends a claim: confirmed records the subscription as
// confirmed; otherwise the claim is dropped, so the next request to
// confirm tries again.
func (db *DB) SettleSubscription(ctx context.Context, provider, topic string, confirmed bool, now time.Time) error {
	return db.transact(ctx, func(tx pgx.Tx) error {
		if confirmed {
			_, err := tx.Exec(ctx, `UPDATE webhook_subscriptions SET confirmed_at = $3 WHERE provider = $1 AND topic = $2`,
				provider, clip(topic, 1000), now)
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM webhook_subscriptions WHERE provider = $1 AND topic = $2 AND confirmed_at IS NULL`,
			provider, clip(topic, 1000))
		return err
	})
}

// ForgetSubscription drops what is known of a provider's subscription to
// topic (the provider says it ended): a new request to confirm it is
// confirmed again.
func (db *DB) ForgetSubscription(ctx context.Context, provider, topic string) error {
	return db.transact(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM webhook_subscriptions WHERE provider = $1 AND topic = $2`, provider, clip(topic, 1000))
		return err
	})
}

// ClaimSubscription is DB.ClaimSubscription, for receivers that record
// through a group committer.
func (g *GroupCommitter) ClaimSubscription(ctx context.Context, provider, topic string, now time.Time) (bool, error) {
	return g.db.ClaimSubscription(ctx, provider, topic, now)
}

// SettleSubscription is DB.SettleSubscription.
func (g *GroupCommitter) SettleSubscription(ctx context.Context, provider, topic string, confirmed bool, now time.Time) error {
	return g.db.SettleSubscription(ctx, provider, topic, confirmed, now)
}

// ForgetSubscription is DB.ForgetSubscription.
func (g *GroupCommitter) ForgetSubscription(ctx context.Context, provider, topic string) error {
	return g.db.ForgetSubscription(ctx, provider, topic)
}
