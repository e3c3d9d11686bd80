package store

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrLeaseLost means another replica holds the mailbox lease.
var ErrLeaseLost = errors.New("store: mailbox lease held by another replica")

// Checkpoint is how far an ingester got in an IMAP folder: every message
// with a UID up to LastUID, under UIDValidity, is committed and acted on.
type Checkpoint struct {
	// Identity names the folder the UIDs belong to (host, user, folder).
	Identity    string
	UIDValidity uint32
	LastUID     uint32
	UpdatedAt   time.Time
}

// AcquireLease takes the lease on mailbox for holder, or renews it when
// holder has it already, until ttl from now by the database clock. It
// returns ErrLeaseLost while another holder's lease has not expired.
func (db *DB) AcquireLease(ctx context.Context, mailbox, holder string, ttl time.Duration) error {
	held := false
	err := db.transact(ctx, func(tx pgx.Tx) error {
		// The WHERE on the update lets the row change hands only once
		// the old holder's lease has run out.
		tag, err := tx.Exec(ctx, `
			INSERT INTO mailbox_leases AS l (mailbox, holder, acquired_at, expires_at)
			VALUES ($1, $2, now(), now() + $3 * interval '1 millisecond')
			ON CONFLICT (mailbox) DO UPDATE
				SET holder = excluded.holder,
					acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at ELSE now() END,
					expires_at = excluded.expires_at
				WHERE l.holder = excluded.holder OR l.expires_at < now()`,
			mailbox, holder, ttl.Milliseconds())
		held = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return err
	}
	if !held {
		return ErrLeaseLost
	}
	return nil
}

// ReleaseLease gives up holder's lease on mailbox so another replica can
// take over at once. Releasing a lease not held is not an error.
func (db *DB) ReleaseLease(ctx context.Context, mailbox, holder string) error {
	return db.transact(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM mailbox_leases WHERE mailbox = $1 AND holder = $2`, mailbox, holder)
		return err
	})
}

// LeaseHolder returns who holds the lease on mailbox and until when;
// ErrNotFound when nobody does.
func (db *DB) LeaseHolder(ctx context.Context, mailbox string) (string, time.Time, error) {
	var holder string
	var until time.Time
	err := db.transact(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT holder, expires_at FROM mailbox_leases WHERE mailbox = $1 AND expires_at >= now()`,
			mailbox).Scan(&holder, &until)
	})
	return holder, until, err
}

// GetCheckpoint returns the saved checkpoint of mailbox; ErrNotFound when
// there is none yet.
func (db *DB) GetCheckpoint(ctx context.Context, mailbox string) (Checkpoint, error) {
	var cp Checkpoint
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var validity, last int64
		err := tx.QueryRow(ctx, `SELECT identity, uid_validity, last_uid, updated_at FROM mailbox_checkpoints WHERE mailbox = $1`,
			mailbox).Scan(&cp.Identity, &validity, &last, &cp.UpdatedAt)
		cp.UIDValidity, cp.LastUID = uint32(validity), uint32(last)
		return err
	})
	return cp, err
}

// SaveCheckpoint records cp for mailbox, provided holder still holds the
// mailbox lease (ErrLeaseLost otherwise), so a replica that lost its lease
// cannot move the checkpoint under the new holder. Under an unchanged
// identity and UIDVALIDITY the checkpoint never moves back.
func (db *DB) SaveCheckpoint(ctx context.Context, mailbox, holder string, cp Checkpoint) error {
	held := false
	err := db.transact(ctx, func(tx pgx.Tx) error {
		held = false
		// Locking the lease row keeps a takeover waiting until this commits.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM mailbox_leases
			WHERE mailbox = $1 AND holder = $2 AND expires_at >= now() FOR UPDATE`, mailbox, holder).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		held = true
		_, err = tx.Exec(ctx, `
			INSERT INTO mailbox_checkpoints AS c (mailbox, identity, uid_validity, last_uid, updated_at)
			VALUES ($1, $2, $3, $4, now())
			ON CONFLICT (mailbox) DO UPDATE
				SET identity = excluded.identity, uid_validity = excluded.uid_validity, updated_at = now(),
					last_uid = CASE WHEN c.identity = excluded.identity AND c.uid_validity = excluded.uid_validity
						THEN greatest(c.last_uid, excluded.last_uid) ELSE excluded.last_uid END`,
			mailbox, cp.Identity, int64(cp.UIDValidity), int64(cp.LastUID))
		return err
	})
	if err != nil {
		return err
	}
	if !held {
		return ErrLeaseLost
	}
	return nil
}
