package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notification channels. Writers notify inside their transaction, so
// PostgreSQL delivers after commit, to every replica.
const (
	channelPolicy       = "bounced_policy"
	channelSuppressions = "bounced_suppressions" // payload: an address key, or flushPayload
	channelAPIKeys      = "bounced_api_keys"
	// Changes and deliveries written (migration 00019's triggers): wake
	// the streams and the deliverers.
	channelChanges    = "bounced_changes"
	channelDeliveries = "bounced_deliveries"
	flushPayload      = "*"
)

// Defaults for Run.
const (
	CleanupIntervalDefault = time.Minute
	cleanupBatch           = 5000
)

// Run keeps the in-process caches (policy, API keys, the single check)
// coherent with the database and removes expired suppressions, until ctx
// ends. Without Run every read goes to the database; with it, changes
// made by any replica reach this one's caches through LISTEN/NOTIFY.
// While the listening connection is down the caches are off.
func (db *DB) Run(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.cleanupLoop(ctx)
	}()
	maintained := make(chan struct{})
	go func() {
		defer close(maintained)
		db.maintenanceLoop(ctx)
	}()
	defer func() { <-maintained }()
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := db.listen(ctx)
		if ctx.Err() != nil {
			break
		}
		db.logger.WarnContext(ctx, "change notifications interrupted; caches off until reconnected", "error", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 10*time.Second)
	}
	<-done
	return nil
}

// Listening reports whether change notifications are being received (and
// so the caches are on).
func (db *DB) Listening() bool { return db.listening.Load() }

func (db *DB) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, db.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range []string{channelPolicy, channelSuppressions, channelAPIKeys, channelChanges, channelDeliveries} {
		if _, err := conn.Exec(ctx, "LISTEN "+ch); err != nil {
			return fmt.Errorf("listen %s: %w", ch, err)
		}
	}
	// Whatever changed before LISTEN took effect was never announced.
	db.flushCaches()
	db.changed.fire()
	db.deliveriesDue.fire()
	db.listening.Store(true)
	defer func() {
		db.listening.Store(false)
		db.flushCaches()
	}()
	db.logger.DebugContext(ctx, "listening for changes")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		switch n.Channel {
		case channelPolicy:
			db.invalidatePolicy()
		case channelAPIKeys:
			db.keys.flush()
		case channelChanges:
			db.changed.fire()
		case channelDeliveries:
			db.deliveriesDue.fire()
		case channelSuppressions:
			if n.Payload == flushPayload {
				if db.cache != nil {
					db.cache.flush()
				}
			} else if db.cache != nil {
				db.cache.invalidate(n.Payload)
			}
		}
	}
}

func (db *DB) flushCaches() {
	db.invalidatePolicy()
	db.keys.flush()
	if db.cache != nil {
		db.cache.flush()
	}
}

// maintenanceLoop makes events partitions ahead of time and applies the
// retention, at once and then every maintainEvery.
func (db *DB) maintenanceLoop(ctx context.Context) {
	t := time.NewTicker(db.maintainEvery)
	defer t.Stop()
	for {
		m, err := db.MaintainPartitions(ctx, db.retention)
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			db.logger.WarnContext(ctx, "events partition maintenance failed; will retry", "error", err)
		case err == nil && !m.Skipped:
			db.metrics.maintained.SetToCurrentTime()
			if m.DefaultDeleted+m.RawDeleted > 0 {
				db.logger.InfoContext(ctx, "retention applied", "events_default", m.DefaultDeleted,
					"raw_messages", m.RawDeleted)
			}
		case err == nil:
			db.metrics.maintained.SetToCurrentTime() // another replica did it
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (db *DB) cleanupLoop(ctx context.Context) {
	t := time.NewTicker(db.cleanupEvery)
	defer t.Stop()
	for {
		if _, err := db.CleanupExpired(ctx); err != nil && !errors.Is(err, context.Canceled) {
			db.logger.WarnContext(ctx, "cleanup of expired suppressions failed", "error", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// CleanupExpired deletes suppressions past their expiry, recording each as
// a suppression_removed event by "system" (and change, delivered to the
// subscriptions that want it), changes and deliveries older than their
// retention, soft-window rows older than
// any window can reach, webhook nonces past their expiry, sent messages
// past SentMessageRetention and the failed attempts at mail not seen for
// 30 days. Expired entries already stop suppressing at their
// expiry; this only reclaims space. It returns how many entries it removed.
func (db *DB) CleanupExpired(ctx context.Context) (int, error) {
	total := 0
	for {
		var n int
		byReason := map[[2]string]int{} // reason, scope
		err := db.transact(ctx, func(tx pgx.Tx) error {
			clear(byReason)
			rows, err := tx.Query(ctx, `
				WITH gone AS (
					DELETE FROM suppressions WHERE id IN (
						SELECT id FROM suppressions WHERE expires_at <= $1
						ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
					RETURNING address, address_key, domain, scope, reason, class, status, reply_code, expires_at
				), ev AS (
					INSERT INTO events (address, address_key, type, class, reason, status, source, scope,
						actor, note, occurred_at)
					SELECT address, address_key, 'suppression_removed', 'none', reason, status, 'system',
						scope, 'system', 'expired', $1 FROM gone
				), removal AS (
					SELECT 'suppression_removed' AS type, scope, address, reason, class, status, reply_code,
						'system' AS source, '' AS provider, NULL::bigint AS event_id, 'system' AS actor, 'expired' AS note,
						expires_at, expires_at AS occurred_at, false AS adds_suppression
					FROM gone
				), `+changesSQL("removal", "$1")+`
				SELECT reason, scope, count(*) FROM gone GROUP BY reason, scope`, db.now(), cleanupBatch)
			if err != nil {
				return err
			}
			var reason, scope string
			var c int
			_, err = pgx.ForEachRow(rows, []any{&reason, &scope, &c}, func() error {
				byReason[[2]string{reason, scope}] += c
				return nil
			})
			return err
		})
		if err != nil {
			return total, err
		}
		n = 0
		for k, c := range byReason {
			db.metrics.countRemoved(k[0], k[1], c)
			n += c
		}
		total += n
		if n < cleanupBatch {
			break
		}
	}
	if err := db.pruneChanges(ctx, db.now().Add(-db.changesRetention)); err != nil {
		return total, err
	}
	err := db.transact(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM soft_failures WHERE occurred_at < $1`, db.now().Add(-366*24*time.Hour)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_nonces WHERE expires_at < $1`, db.now()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sent_messages WHERE sent_at < $1`, db.now().Add(-SentMessageRetention)); err != nil {
			return err
		}
		// A message that failed, then was never seen again.
		_, err := tx.Exec(ctx, `DELETE FROM mail_attempts WHERE quarantined_at IS NULL AND last_at < $1`, db.now().Add(-30*24*time.Hour))
		return err
	})
	return total, err
}
