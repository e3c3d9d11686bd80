package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/parse"
)

// Recipient is the state kept per address (and tenant).
type Recipient struct {
	Email            string     `json:"email"`
	Domain           string     `json:"domain"`
	SoftCount        int        `json:"soft_count"`
	SoftFirstAt      *time.Time `json:"soft_first_at"`
	HardCount        int        `json:"hard_count"`
	ComplaintCount   int        `json:"complaint_count"`
	SenderErrorCount int        `json:"sender_error_count"`
	LastEventID      *int64     `json:"last_event_id"`
	LastEventType    string     `json:"last_event_type"`
	LastEventAt      *time.Time `json:"last_event_at"`
	LastBounceAt     *time.Time `json:"last_bounce_at"`
	LastDeliveryAt   *time.Time `json:"last_delivery_at"`
	ResetAt          *time.Time `json:"reset_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

// GetRecipient returns the state of one address outside any tenant;
// ErrNotFound if no event about it was ever recorded.
func (db *DB) GetRecipient(ctx context.Context, email string) (Recipient, error) {
	return db.GetTenantRecipient(ctx, "", email)
}

// GetTenantRecipient returns the state of one address in a tenant ("" for
// none); ErrNotFound if no event about it was ever recorded there.
func (db *DB) GetTenantRecipient(ctx context.Context, tenant, email string) (Recipient, error) {
	var r Recipient
	err := db.transact(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT address, lower(split_part(address, '@', -1)), soft_count, soft_first_at, hard_count, complaint_count,
				sender_error_count, last_event_id, last_event_type, last_event_at, last_bounce_at,
				last_delivery_at, reset_at, updated_at
			FROM recipients WHERE tenant = $1 AND address_key = $2`, tenant, parse.AddressKey(email)).Scan(
			&r.Email, &r.Domain, &r.SoftCount, &r.SoftFirstAt, &r.HardCount, &r.ComplaintCount,
			&r.SenderErrorCount, &r.LastEventID, &r.LastEventType, &r.LastEventAt, &r.LastBounceAt,
			&r.LastDeliveryAt, &r.ResetAt, &r.UpdatedAt)
	})
	return r, err
}

// ResetRecipient clears an address's soft-failure counter in a tenant (""
// for none), as a delivery would, and records a reset event naming actor.
// Suppressions already in force stay. ErrNotFound if no state exists.
func (db *DB) ResetRecipient(ctx context.Context, tenant, email, actor, note string) (Recipient, error) {
	key := parse.AddressKey(email)
	err := db.transact(ctx, func(tx pgx.Tx) error {
		now := db.now()
		tag, err := tx.Exec(ctx, `UPDATE recipients SET soft_count = 0, soft_first_at = NULL, reset_at = $3,
			updated_at = now() WHERE tenant = $1 AND address_key = $2`, tenant, key, now)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM soft_failures WHERE tenant = $1 AND address_key = $2`, tenant, key); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO events (address, address_key, type, class, reason, source, scope, actor, note, occurred_at)
			VALUES ($1, $2, 'reset', 'none', 'other', 'api', $3, $4, $5, $6)`,
			email, key, TenantScope(tenant), actor, clip(note, 1000), now)
		if err != nil {
			return fmt.Errorf("record reset: %w", err)
		}
		return nil
	})
	if err != nil {
		return Recipient{}, err
	}
	return db.GetTenantRecipient(ctx, tenant, email)
}
