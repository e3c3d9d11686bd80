package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/parse"
)

// Recipient is the state kept per address.
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

// GetRecipient returns the state of one address; ErrNotFound if no event
// about it was ever recorded.
func (db *DB) GetRecipient(ctx context.Context, email string) (Recipient, error) {
	var r Recipient
	err := db.transact(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT address, domain, soft_count, soft_first_at, hard_count, complaint_count,
				sender_error_count, last_event_id, last_event_type, last_event_at, last_bounce_at,
				last_delivery_at, reset_at, updated_at
			FROM recipients WHERE address_key = $1`, parse.AddressKey(email)).Scan(
			&r.Email, &r.Domain, &r.SoftCount, &r.SoftFirstAt, &r.HardCount, &r.ComplaintCount,
			&r.SenderErrorCount, &r.LastEventID, &r.LastEventType, &r.LastEventAt, &r.LastBounceAt,
			&r.LastDeliveryAt, &r.ResetAt, &r.UpdatedAt)
	})
	return r, err
}
