package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// QuarantinedMail is a message a mailbox set aside after failing to
// record it too many times. Its bytes are the raw input RawID (nil once
// the retention removed them).
type QuarantinedMail struct {
	ID            int64     `json:"id"`
	Mailbox       string    `json:"mailbox"`
	SHA256        string    `json:"sha256"`
	Attempts      int       `json:"attempts"`
	LastError     string    `json:"last_error"`
	FirstAttempt  time.Time `json:"first_attempt_at"`
	LastAttempt   time.Time `json:"last_attempt_at"`
	QuarantinedAt time.Time `json:"quarantined_at"`
	RawID         *int64    `json:"raw_id"`
}

// StartMailAttempt counts one more attempt of mailbox at the message whose
// bytes hash to sum (none when count is false: the last one failed for an
// outage, not for the message) and returns the attempts so far, the last
// failure and whether the message is quarantined already. Counting before
// the attempt also counts the attempts that end the process.
func (db *DB) StartMailAttempt(ctx context.Context, mailbox string, sum [32]byte, count bool) (attempts int, lastError string, quarantined bool, err error) {
	inc := 0
	if count {
		inc = 1
	}
	now := db.now()
	err = db.transact(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			INSERT INTO mail_attempts AS a (mailbox, sha256, attempts, first_at, last_at) VALUES ($1, $2, $3, $4, $4)
			ON CONFLICT (mailbox, sha256) DO UPDATE SET attempts = a.attempts + $3, last_at = $4
			RETURNING attempts, last_error, quarantined_at IS NOT NULL`, clip(mailbox, 255), sum[:], inc, now).
			Scan(&attempts, &lastError, &quarantined)
	})
	return attempts, lastError, quarantined, err
}

// FinishMailAttempt records how an attempt ended: failure "" forgets the
// message (it is recorded), else failure is kept as its last error.
func (db *DB) FinishMailAttempt(ctx context.Context, mailbox string, sum [32]byte, failure string) error {
	return db.transact(ctx, func(tx pgx.Tx) error {
		if failure == "" {
			_, err := tx.Exec(ctx, `DELETE FROM mail_attempts WHERE mailbox = $1 AND sha256 = $2 AND quarantined_at IS NULL`,
				clip(mailbox, 255), sum[:])
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE mail_attempts SET last_error = $3 WHERE mailbox = $1 AND sha256 = $2`,
			clip(mailbox, 255), sum[:], clip(failure, 2000))
		return err
	})
}

// QuarantineMail stores in (a message of mailbox that kept failing; its
// events are not read) as a failed raw input and marks the message
// quarantined, in one transaction. Storing bytes stored before is a no-op
// that returns the earlier message.
func (db *DB) QuarantineMail(ctx context.Context, mailbox string, in Input) (Outcome, error) {
	in.Status, in.Kind, in.Result, in.Events = ParseFailed, "", nil, nil
	p, err := prepare(in, db.now())
	if err != nil {
		return Outcome{}, err
	}
	// The input is recorded as any other (record.go); in the same
	// transaction the message is marked quarantined, with the id its bytes
	// are stored under, now or before.
	recs, err := db.recordSet(ctx, []*prepared{p}, statement{`
			INSERT INTO mail_attempts AS a (mailbox, sha256, attempts, last_error, first_at, last_at, quarantined_at, raw_id)
			VALUES ($1, $2, 0, $3, $4, $4, $4, (SELECT id FROM raw_messages WHERE sha256 = $2))
			ON CONFLICT (mailbox, sha256) DO UPDATE SET quarantined_at = coalesce(a.quarantined_at, $4), raw_id = EXCLUDED.raw_id`,
		[]any{clip(mailbox, 255), p.sum[:], clip(in.Error, 2000), p.received}})
	if err != nil {
		return Outcome{}, fmt.Errorf("store: quarantine: %w", err)
	}
	res := recs[0]
	db.countRecorded(in, res)
	res.out.Quarantined = true
	return res.out, nil
}

// ListQuarantinedMail returns quarantined messages, newest first, and the
// cursor of the next page ("" on the last). It returns ErrBadCursor for a
// cursor it did not issue.
func (db *DB) ListQuarantinedMail(ctx context.Context, cursor string, limit int) ([]QuarantinedMail, string, error) {
	before := int64(1<<63 - 1)
	if cursor != "" {
		c, err := decodeSortCursor(cursor, "quarantine")
		if err != nil {
			return nil, "", err
		}
		before = c.id
	}
	limit = clampLimit(limit)
	var out []QuarantinedMail
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, mailbox, encode(sha256, 'hex'), attempts, last_error, first_at, last_at, quarantined_at, raw_id
			FROM mail_attempts WHERE quarantined_at IS NOT NULL AND id < $1 ORDER BY id DESC LIMIT $2`, before, limit+1)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (QuarantinedMail, error) {
			var q QuarantinedMail
			err := row.Scan(&q.ID, &q.Mailbox, &q.SHA256, &q.Attempts, &q.LastError, &q.FirstAttempt, &q.LastAttempt,
				&q.QuarantinedAt, &q.RawID)
			return q, err
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeSortCursor("quarantine", "", out[limit-1].ID)
	}
	return out, next, nil
}

// CountQuarantinedMail counts the mail set aside.
func (db *DB) CountQuarantinedMail(ctx context.Context) (int64, error) {
	var n int64
	err := db.transact(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM mail_attempts WHERE quarantined_at IS NOT NULL`).Scan(&n)
	})
	return n, err
}
