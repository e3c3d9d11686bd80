package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bounced/bounced/internal/parse"
)

// SentMessageRetention is how long a reported sent message can verify a
// bounce: bounces come back within days (an MTA retries for five).
const SentMessageRetention = 30 * 24 * time.Hour

// SentMessage is a message a sender reported sending: its Message-ID (or
// VERP token) and, optionally, its recipient.
type SentMessage struct {
	MessageID string
	Recipient string // normalised; "" matches any recipient
	At        time.Time
	// Scope is the list the message was sent to: a scope of the tenant
	// it is recorded in (see QualifyScope), or "" for the tenant's own
	// list (global without a tenant). Bounces and complaints about the
	// message are attributed to it (see SentRecords).
	Scope string
}

// sentKey is the form message ids are compared in: without the angle
// brackets and space around a Message-ID.
func sentKey(id string) string { return messageKey(id) }

// RecordSentMessages keeps msgs, in tenant, for SentMessageRetention, so
// that bounces about them count as verified and are attributed to their
// scope. Recording one again keeps the later time and the scope last
// given. A scope outside tenant is ErrForbiddenScope, a malformed one
// ErrBadScope.
func (db *DB) RecordSentMessages(ctx context.Context, tenant string, msgs []SentMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	keys, addrs, ats := make([]string, len(msgs)), make([]string, len(msgs)), make([]time.Time, len(msgs))
	scopes := make([]string, len(msgs))
	now := db.now()
	for i, m := range msgs {
		if m.Scope != "" {
			if err := CheckScope(m.Scope); err != nil {
				return err
			}
			if TenantOf(m.Scope) != tenant {
				return ErrForbiddenScope
			}
			if m.Scope != TenantScope(tenant) {
				scopes[i] = m.Scope
			}
		}
		keys[i] = sentKey(m.MessageID)
		if m.Recipient != "" {
			addrs[i] = parse.AddressKey(m.Recipient)
		}
		ats[i] = m.At
		if ats[i].IsZero() {
			ats[i] = now
		}
	}
	return db.transact(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO sent_messages (message_key, address_key, tenant, sent_at, scope)
			SELECT k, a, $4, t, sc FROM unnest($1::text[], $2::text[], $3::timestamptz[], $5::text[]) AS u(k, a, t, sc)
			WHERE k <> ''
			ON CONFLICT (message_key, address_key, tenant) DO UPDATE
				SET sent_at = greatest(sent_messages.sent_at, EXCLUDED.sent_at), scope = EXCLUDED.scope`,
			keys, addrs, ats, tenant, scopes)
		return err
	})
}

// MatchSent returns which of addresses (normalised) were sent, as
// reported through RecordSentMessages in the retention, a message with
// one of ids (Message-IDs or VERP tokens); an id reported without a
// recipient matches every address. The result is keyed by
// parse.AddressKey.
func (db *DB) MatchSent(ctx context.Context, ids, addresses []string) (map[string]bool, error) {
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		if k := sentKey(id); k != "" {
			keys = append(keys, k)
		}
	}
	out := map[string]bool{}
	if len(keys) == 0 || len(addresses) == 0 {
		return out, nil
	}
	addrKeys := make([]string, len(addresses))
	for i, a := range addresses {
		addrKeys[i] = parse.AddressKey(a)
	}
	var matched []string
	err := db.read(ctx, func(q *pgxpool.Pool) error {
		return q.QueryRow(ctx, `
			SELECT coalesce(array_agg(DISTINCT address_key), '{}') FROM sent_messages
			WHERE message_key = ANY($1) AND (address_key = '' OR address_key = ANY($2)) AND sent_at > $3`,
			keys, addrKeys, db.now().Add(-SentMessageRetention)).Scan(&matched)
	})
	if err != nil {
		return nil, err
	}
	for _, m := range matched {
		if m == "" {
			for _, k := range addrKeys {
				out[k] = true
			}
			continue
		}
		out[m] = true
	}
	return out, nil
}
