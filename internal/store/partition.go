package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Partition maintenance defaults.
const (
	// PartitionsAheadDefault is how many months after the current one get
	// their events partition in advance.
	PartitionsAheadDefault = 2
	// MaintenanceIntervalDefault is how often Run makes partitions and
	// applies the retention.
	MaintenanceIntervalDefault = 6 * time.Hour
	// retentionBatch rows are deleted per statement, so no delete holds
	// locks or bloats WAL for long.
	retentionBatch = 5000
	// partitionLockTimeout bounds how long DDL on events may queue behind
	// running transactions (and block inserts queued behind it).
	partitionLockTimeout = "5s"
	// maintenanceLock serialises maintenance across replicas
	// (pg_try_advisory_xact_lock key).
	maintenanceLock = 0x626f756e63656438 // "bounced8"
)

// EventsPartition is one partition of the events table.
type EventsPartition struct {
	Name string
	// From and To bound created_at: From inclusive, To exclusive. A zero
	// From is MINVALUE (the table events was before partitioning); both
	// are zero for the default partition.
	From, To time.Time
	Default  bool
	// Rows is PostgreSQL's estimate (reltuples), -1 before the first
	// ANALYZE; Bytes includes indexes and TOAST.
	Rows  int64
	Bytes int64
}

// Maintenance says what MaintainPartitions did.
type Maintenance struct {
	Created []string // partitions made
	Dropped []string // partitions dropped under the retention
	// Moved counts rows moved out of the default partition into a
	// partition made for them.
	Moved int64
	// DefaultDeleted and RawDeleted count the rows of the default
	// partition and the raw inputs deleted under the retention.
	DefaultDeleted, RawDeleted int64
	// Skipped is set when another replica held the maintenance lock.
	Skipped bool
}

// EventsPartitions lists the partitions of events, oldest first, the
// default partition last.
func (db *DB) EventsPartitions(ctx context.Context) ([]EventsPartition, error) {
	var parts []EventsPartition
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var err error
		parts, err = listPartitions(ctx, tx)
		return err
	})
	return parts, err
}

func listPartitions(ctx context.Context, tx pgx.Tx) ([]EventsPartition, error) {
	// The bounds are read back through the session's own timestamptz
	// input, so whatever TimeZone printed them parses them.
	rows, err := tx.Query(ctx, `
		SELECT c.relname, b.bound = 'DEFAULT',
			substring(b.bound from 'FROM \(''([^'']*)''\)')::timestamptz,
			substring(b.bound from 'TO \(''([^'']*)''\)')::timestamptz,
			c.reltuples::bigint, pg_total_relation_size(c.oid)
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
		WHERE i.inhparent = 'events'::regclass`)
	if err != nil {
		return nil, err
	}
	var parts []EventsPartition
	var p EventsPartition
	var from, to *time.Time
	_, err = pgx.ForEachRow(rows, []any{&p.Name, &p.Default, &from, &to, &p.Rows, &p.Bytes}, func() error {
		q := p
		if from != nil {
			q.From = from.UTC()
		}
		if to != nil {
			q.To = to.UTC()
		}
		parts = append(parts, q)
		return nil
	})
	slices.SortFunc(parts, func(a, b EventsPartition) int {
		switch {
		case a.Default != b.Default:
			if a.Default {
				return 1
			}
			return -1
		case !a.To.Equal(b.To):
			return a.To.Compare(b.To)
		}
		return a.From.Compare(b.From)
	})
	return parts, err
}

// MaintainPartitions makes the events partitions of the current month
// (by the database clock, in UTC) and the PartitionsAheadDefault months
// after it, moving into them any rows the default partition caught. With
// retentionMonths > 0 it then drops the partitions that ended before the
// first day of the month that many months back, and deletes the raw
// inputs older than that which no remaining event refers to. One replica
// at a time does it; the others skip.
func (db *DB) MaintainPartitions(ctx context.Context, retentionMonths int) (Maintenance, error) {
	var now time.Time
	if err := db.pool.QueryRow(ctx, `SELECT now()`).Scan(&now); err != nil {
		return Maintenance{}, interpret(err)
	}
	return db.maintainPartitions(ctx, now, retentionMonths)
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func partitionName(month time.Time) string {
	return fmt.Sprintf("events_y%04dm%02d", month.Year(), int(month.Month()))
}

// errLocked means another replica holds the maintenance lock.
var errLocked = errors.New("store: partition maintenance runs elsewhere")

// maintenanceTx runs fn in a transaction holding the maintenance lock,
// with DDL lock waits bounded.
func (db *DB) maintenanceTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.transact(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '`+partitionLockTimeout+`'`); err != nil {
			return err
		}
		var got bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(maintenanceLock)).Scan(&got); err != nil {
			return err
		}
		if !got {
			return errLocked
		}
		return fn(tx)
	})
}

func (db *DB) maintainPartitions(ctx context.Context, now time.Time, retentionMonths int) (Maintenance, error) {
	var m Maintenance
	if retentionMonths < 0 {
		return m, fmt.Errorf("store: retention of %d months", retentionMonths)
	}
	first := monthStart(now)
	for i := 0; i <= PartitionsAheadDefault; i++ {
		month := first.AddDate(0, i, 0)
		err := db.maintenanceTx(ctx, func(tx pgx.Tx) error {
			moved, made, err := createPartition(ctx, tx, month)
			if made {
				m.Created = append(m.Created, partitionName(month))
				m.Moved += moved
			}
			return err
		})
		if errors.Is(err, errLocked) {
			m.Skipped = true
			return m, nil
		}
		if err != nil {
			return m, fmt.Errorf("store: partition for %s: %w", month.Format("2006-01"), err)
		}
	}
	for _, name := range m.Created {
		db.logger.InfoContext(ctx, "events partition created", "partition", name)
	}
	if m.Moved > 0 {
		db.logger.WarnContext(ctx, "events moved out of the default partition", "rows", m.Moved)
	}
	if retentionMonths == 0 {
		return m, nil
	}
	cutoff := first.AddDate(0, -retentionMonths, 0)
	err := db.maintenanceTx(ctx, func(tx pgx.Tx) error {
		m.Dropped = nil
		parts, err := listPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if p.Default || p.To.IsZero() || p.To.After(cutoff) {
				continue
			}
			if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{p.Name}.Sanitize()); err != nil {
				return err
			}
			m.Dropped = append(m.Dropped, p.Name)
		}
		return nil
	})
	if errors.Is(err, errLocked) {
		m.Skipped = true
		return m, nil
	}
	if err != nil {
		return m, fmt.Errorf("store: drop old partitions: %w", err)
	}
	for _, name := range m.Dropped {
		db.logger.InfoContext(ctx, "events partition dropped by the retention", "partition", name, "cutoff", cutoff)
	}
	// The default partition has no month to drop: old rows go one by one.
	if m.DefaultDeleted, err = db.deleteBatches(ctx, `DELETE FROM events_default WHERE ctid = ANY (ARRAY(
		SELECT ctid FROM events_default WHERE created_at < $1 LIMIT $2))`, cutoff); err != nil {
		return m, fmt.Errorf("store: retention of the default partition: %w", err)
	}
	// A raw input still referred to by a kept event stays. Its events were
	// inserted in its transaction, so they were created within a day of
	// its receipt (allowing for the clocks of bounced and PostgreSQL):
	// only the partitions around then are looked in, and for an input older
	// than the retention those are mostly gone.
	// A quarantined message whose bytes go keeps its record, without them.
	if m.RawDeleted, err = db.deleteBatches(ctx, `
		WITH gone AS (
			SELECT r.ctid, r.id FROM raw_messages r WHERE r.received_at < $1
				AND NOT EXISTS (SELECT 1 FROM events e WHERE e.raw_id = r.id
					AND e.created_at >= r.received_at - interval '1 day' AND e.created_at < r.received_at + interval '1 day')
			LIMIT $2
		), unlinked AS (
			UPDATE mail_attempts SET raw_id = NULL WHERE raw_id IN (SELECT id FROM gone)
		)
		DELETE FROM raw_messages WHERE ctid IN (SELECT ctid FROM gone)`, cutoff); err != nil {
		return m, fmt.Errorf("store: retention of raw inputs: %w", err)
	}
	return m, nil
}

// deleteBatches runs a batched DELETE (args: cutoff, batch size) until it
// deletes fewer rows than a batch, and returns the rows deleted.
func (db *DB) deleteBatches(ctx context.Context, sql string, cutoff time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := db.transact(ctx, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, sql, cutoff, retentionBatch)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < retentionBatch {
			return total, nil
		}
	}
}

// createPartition makes month's partition unless a partition already
// covers part of it (the pre-partitioning table covers up to the month
// after the upgrade). Rows the default partition holds for the month move
// into the new partition in the same transaction, as PostgreSQL refuses a
// partition whose rows sit in the default one.
func createPartition(ctx context.Context, tx pgx.Tx, month time.Time) (moved int64, made bool, err error) {
	end := month.AddDate(0, 1, 0)
	parts, err := listPartitions(ctx, tx)
	if err != nil {
		return 0, false, err
	}
	for _, p := range parts {
		if !p.Default && p.From.Before(end) && p.To.After(month) {
			return 0, false, nil
		}
	}
	lo, hi := month.Format(time.RFC3339), end.Format(time.RFC3339)
	var stray bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events_default WHERE created_at >= $1 AND created_at < $2)`,
		month, end).Scan(&stray); err != nil {
		return 0, false, err
	}
	if stray {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE bounced_moving ON COMMIT DROP AS
			WITH d AS (DELETE FROM events_default WHERE created_at >= '`+lo+`' AND created_at < '`+hi+`' RETURNING *)
			SELECT * FROM d`); err != nil {
			return 0, false, err
		}
	}
	name := partitionName(month)
	if _, err := tx.Exec(ctx, `CREATE TABLE `+pgx.Identifier{name}.Sanitize()+
		` PARTITION OF events FOR VALUES FROM ('`+lo+`') TO ('`+hi+`')`); err != nil {
		return 0, false, err
	}
	// A provider event id is unique in each partition (migration 00012).
	if _, err := tx.Exec(ctx, `CREATE UNIQUE INDEX `+pgx.Identifier{name + "_provider_event"}.Sanitize()+` ON `+
		pgx.Identifier{name}.Sanitize()+` (source, provider, provider_event_id) WHERE provider_event_id IS NOT NULL`); err != nil {
		return 0, false, err
	}
	if stray {
		tag, err := tx.Exec(ctx, `
			INSERT INTO events (id, raw_id, address, address_key, type, class, reason, status, reply_code,
				diagnostic, reporting_mta, remote_mta, original_message_id, source, provider, provider_event_id,
				scope, actor, note, occurred_at, created_at, evidence)
			OVERRIDING SYSTEM VALUE
			SELECT id, raw_id, address, address_key, type, class, reason, status, reply_code,
				diagnostic, reporting_mta, remote_mta, original_message_id, source, provider, provider_event_id,
				scope, actor, note, occurred_at, created_at, evidence
			FROM bounced_moving`)
		if err != nil {
			return 0, false, err
		}
		moved = tag.RowsAffected()
	}
	return moved, true, nil
}
