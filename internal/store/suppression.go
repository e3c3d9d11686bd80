package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/parse"
)

// Suppression is an address that must not be mailed in a scope.
type Suppression struct {
	ID          int64        `json:"-"`
	Email       string       `json:"email"`
	Scope       string       `json:"scope"`
	Domain      string       `json:"domain"`
	Reason      parse.Reason `json:"reason"`
	Class       parse.Class  `json:"class"`
	Status      string       `json:"status"`
	ReplyCode   string       `json:"reply_code"`
	Diagnostic  string       `json:"diagnostic"`
	Source      string       `json:"source"`
	Provider    string       `json:"provider"`
	EventCount  int          `json:"event_count"`
	FirstSeenAt time.Time    `json:"first_seen_at"`
	LastSeenAt  time.Time    `json:"last_seen_at"`
	ExpiresAt   *time.Time   `json:"expires_at"`
	CreatedBy   string       `json:"created_by"`
	Note        string       `json:"note"`
	CreatedAt   time.Time    `json:"created_at"`
}

const suppressionColumns = `id, address, scope, domain, reason, class, status, reply_code, diagnostic,
	source, provider, event_count, first_seen_at, last_seen_at, expires_at, created_by, note, created_at`

func scanSuppression(row pgx.CollectableRow) (Suppression, error) {
	var s Suppression
	err := row.Scan(&s.ID, &s.Email, &s.Scope, &s.Domain, &s.Reason, &s.Class, &s.Status, &s.ReplyCode,
		&s.Diagnostic, &s.Source, &s.Provider, &s.EventCount, &s.FirstSeenAt, &s.LastSeenAt, &s.ExpiresAt,
		&s.CreatedBy, &s.Note, &s.CreatedAt)
	return s, err
}

// suppress puts the event's address on the scope's list, or refreshes the
// entry already there. It reports whether the address was newly added.
func suppress(ctx context.Context, tx pgx.Tx, eventID int64, source, provider, scope, actor string, ev NewEvent) (bool, error) {
	var inserted bool
	err := tx.QueryRow(ctx, `
		INSERT INTO suppressions AS s (scope, address, address_key, domain, reason, class, status, reply_code,
			diagnostic, source, provider, first_event_id, last_event_id, first_seen_at, last_seen_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $13, $14)
		ON CONFLICT (scope, address_key) DO UPDATE SET
			event_count = s.event_count + 1,
			first_seen_at = least(s.first_seen_at, EXCLUDED.first_seen_at),
			last_seen_at = greatest(s.last_seen_at, EXCLUDED.last_seen_at),
			last_event_id = EXCLUDED.last_event_id,
			-- the newest evidence describes the entry; a complaint is never downgraded
			reason = CASE WHEN s.class = 'complaint' THEN s.reason ELSE EXCLUDED.reason END,
			class = CASE WHEN s.class = 'complaint' THEN s.class ELSE EXCLUDED.class END,
			status = EXCLUDED.status,
			reply_code = EXCLUDED.reply_code,
			diagnostic = EXCLUDED.diagnostic
		RETURNING (xmax = 0)`,
		scope, ev.Address, parse.AddressKey(ev.Address), parse.AddressDomain(ev.Address), string(ev.Reason),
		string(ev.Class), string(ev.Status), ev.ReplyCode, clip(ev.Diagnostic, 4000), source, provider,
		eventID, ev.OccurredAt, actor).Scan(&inserted)
	if err != nil {
		return false, fmt.Errorf("suppress: %w", err)
	}
	return inserted, nil
}

// GetSuppression returns the entry for email in scope. Entries past their
// expiry no longer suppress and are not returned.
func (db *DB) GetSuppression(ctx context.Context, email, scope string) (Suppression, error) {
	if scope == "" {
		scope = GlobalScope
	}
	var s Suppression
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+suppressionColumns+` FROM suppressions
			WHERE address_key = $1 AND scope = $2 AND (expires_at IS NULL OR expires_at > $3)`,
			parse.AddressKey(email), scope, db.now())
		if err != nil {
			return err
		}
		s, err = pgx.CollectExactlyOneRow(rows, scanSuppression)
		return err
	})
	return s, err
}

// SuppressionFilter selects entries for ListSuppressions.
type SuppressionFilter struct {
	Scope  string // empty for every scope
	Cursor string
	Limit  int
}

// ListSuppressions returns active entries, newest first, and the cursor of
// the next page ("" when this is the last). Rows added while a client
// pages get higher ids and so never shift the pages it has not read yet.
func (db *DB) ListSuppressions(ctx context.Context, f SuppressionFilter) ([]Suppression, string, error) {
	after := int64(1<<63 - 1)
	if f.Cursor != "" {
		var err error
		if after, err = decodeIDCursor(f.Cursor); err != nil {
			return nil, "", err
		}
	}
	limit := clampLimit(f.Limit)
	var out []Suppression
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+suppressionColumns+` FROM suppressions
			WHERE id < $1 AND ($2 = '' OR scope = $2) AND (expires_at IS NULL OR expires_at > $3)
			ORDER BY id DESC LIMIT $4`, after, f.Scope, db.now(), limit+1)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanSuppression)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeIDCursor(out[len(out)-1].ID)
	}
	return out, next, nil
}

// DeleteSuppression takes email off scope's list, records who did it and
// why as a suppression_removed event, and resets the recipient's soft
// counter so the address starts afresh. ErrNotFound if it was not listed.
func (db *DB) DeleteSuppression(ctx context.Context, email, scope, actor, note string) (Suppression, error) {
	if scope == "" {
		scope = GlobalScope
	}
	var s Suppression
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM suppressions WHERE address_key = $1 AND scope = $2
			RETURNING `+suppressionColumns, parse.AddressKey(email), scope)
		if err != nil {
			return err
		}
		if s, err = pgx.CollectExactlyOneRow(rows, scanSuppression); err != nil {
			return err
		}
		now := db.now()
		if _, err := tx.Exec(ctx, `
			INSERT INTO events (address, address_key, domain, type, class, reason, status, source, scope,
				actor, note, occurred_at)
			VALUES ($1, $2, $3, 'suppression_removed', 'none', $4, $5, 'api', $6, $7, $8, $9)`,
			s.Email, parse.AddressKey(s.Email), s.Domain, string(s.Reason), s.Status, scope, actor, note, now); err != nil {
			return fmt.Errorf("record removal: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE recipients SET soft_count = 0, soft_first_at = NULL, reset_at = $2,
			updated_at = now() WHERE address_key = $1`, parse.AddressKey(s.Email), now)
		return err
	})
	if err != nil {
		return Suppression{}, err
	}
	db.metrics.suppressionsDel.WithLabelValues(string(s.Reason)).Inc()
	return s, nil
}
