package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/parse"
)

// GlobalScope is the suppression scope every check sees.
const GlobalScope = "global"

// Event is a recorded event.
type Event struct {
	ID                int64           `json:"id"`
	RawID             *int64          `json:"raw_id,omitempty"`
	Address           string          `json:"recipient"`
	Domain            string          `json:"domain"`
	Type              parse.EventType `json:"type"`
	Class             parse.Class     `json:"class"`
	Reason            parse.Reason    `json:"reason"`
	Status            string          `json:"status"`
	ReplyCode         string          `json:"reply_code"`
	Diagnostic        string          `json:"diagnostic"`
	ReportingMTA      string          `json:"reporting_mta"`
	RemoteMTA         string          `json:"remote_mta"`
	OriginalMessageID string          `json:"original_message_id"`
	Source            string          `json:"source"`
	Provider          string          `json:"provider"`
	ProviderEventID   string          `json:"provider_event_id,omitempty"`
	Scope             string          `json:"scope"`
	Actor             string          `json:"actor,omitempty"`
	Note              string          `json:"note,omitempty"`
	OccurredAt        time.Time       `json:"occurred_at"`
	CreatedAt         time.Time       `json:"created_at"`
}

// EventFilter selects events for ListEvents.
type EventFilter struct {
	Address string // normalised; empty for all
	// Tenant with OnlyTenant keeps the events of one tenant ("" for the
	// untenanted ones); without OnlyTenant every tenant's events are listed.
	Tenant     string
	OnlyTenant bool
	Type       parse.EventType
	Since      time.Time // inclusive
	Until      time.Time // exclusive
	Cursor     string
	Limit      int
}

// ListEvents returns events newest first and the cursor of the next page
// ("" when this is the last).
func (db *DB) ListEvents(ctx context.Context, f EventFilter) ([]Event, string, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Address != "" {
		where = append(where, "address_key = "+arg(parse.AddressKey(f.Address)))
	}
	if f.OnlyTenant {
		where = append(where, "tenant = "+arg(f.Tenant))
	}
	if f.Type != "" {
		where = append(where, "type = "+arg(string(f.Type)))
	}
	if !f.Since.IsZero() {
		where = append(where, "occurred_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "occurred_at < "+arg(f.Until))
	}
	if f.Cursor != "" {
		at, id, err := decodeTimeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(occurred_at, id) < ("+arg(at)+", "+arg(id)+")")
	}
	limit := clampLimit(f.Limit)
	q := `SELECT ` + eventColumns + ` FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY occurred_at DESC, id DESC LIMIT " + arg(limit+1)
	var out []Event
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanEvent)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[len(out)-1]
		next = encodeTimeCursor(last.OccurredAt, last.ID)
	}
	return out, next, nil
}

const eventColumns = `id, raw_id, address, domain, type, class, reason, status, reply_code, diagnostic,
	reporting_mta, remote_mta, original_message_id, source, provider, coalesce(provider_event_id, ''),
	scope, actor, note, occurred_at, created_at`

func scanEvent(row pgx.CollectableRow) (Event, error) {
	var e Event
	err := row.Scan(&e.ID, &e.RawID, &e.Address, &e.Domain, &e.Type, &e.Class, &e.Reason, &e.Status,
		&e.ReplyCode, &e.Diagnostic, &e.ReportingMTA, &e.RemoteMTA, &e.OriginalMessageID, &e.Source,
		&e.Provider, &e.ProviderEventID, &e.Scope, &e.Actor, &e.Note, &e.OccurredAt, &e.CreatedAt)
	return e, err
}

// applyRules are what applying events needs besides the event: the policy
// in force (cached, see DB.currentPolicy) and the time now.
type applyRules struct {
	policy *Policy
	now    time.Time
}

// insertEvent records one event and applies it, under the policy, to the
// recipient's state and the suppression list. It returns the event id (0
// when the event was a replay of one already recorded) and whether an
// address was newly suppressed. It runs once per event inside the
// caller's transaction and costs one statement per step, no policy reads.
// The entry it returns is the suppression newly added (nil when none).
func insertEvent(ctx context.Context, tx pgx.Tx, rules applyRules, rawID *int64, source, provider, actor, note, scope string, ev parse.Event) (int64, *entry, error) {
	addr, err := parse.NormalizeAddress(ev.Address)
	if err != nil {
		return 0, nil, nil // nothing to key it on; the raw input keeps it
	}
	ev.Address = addr
	if scope == "" || CheckScope(scope) != nil {
		scope = GlobalScope
	}
	var providerEventID *string
	if ev.ProviderEventID != "" {
		providerEventID = &ev.ProviderEventID
	}
	var id int64
	// The event's id comes from the sequence first, so its key can name it;
	// a key already in event_keys is a replay and inserts nothing.
	err = tx.QueryRow(ctx, `
		WITH n AS (
			SELECT nextval(pg_get_serial_sequence('events', 'id')) AS id
		), keyed AS (
			INSERT INTO event_keys (source, provider, provider_event_id, event_id)
			SELECT $14, $15, $16, id FROM n WHERE $16::text IS NOT NULL
			ON CONFLICT DO NOTHING
			RETURNING event_id
		)
		INSERT INTO events (id, raw_id, address, address_key, domain, type, class, reason, status, reply_code,
			diagnostic, reporting_mta, remote_mta, original_message_id, source, provider, provider_event_id,
			scope, actor, note, occurred_at)
		OVERRIDING SYSTEM VALUE
		SELECT n.id, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20
		FROM n WHERE $16::text IS NULL OR EXISTS (SELECT 1 FROM keyed)
		RETURNING id`,
		rawID, ev.Address, parse.AddressKey(ev.Address), parse.AddressDomain(ev.Address), string(ev.Type),
		string(ev.Class), string(ev.Reason), clip(string(ev.Status), 32), clip(ev.ReplyCode, 8), clip(ev.Diagnostic, 4000),
		clip(ev.ReportingMTA, 255), clip(ev.RemoteMTA, 255), clip(ev.OriginalMessageID, 998), source, provider, providerEventID,
		scope, actor, clip(note, 1000), ev.OccurredAt).Scan(&id)
	if err == pgx.ErrNoRows {
		return 0, nil, nil // a replayed provider event
	}
	if err != nil {
		return 0, nil, fmt.Errorf("insert event: %w", err)
	}
	pol := rules.policy
	dec := pol.decide(ev)
	softCount, err := applyToRecipient(ctx, tx, pol, dec, id, scope, ev)
	if err != nil {
		return 0, nil, err
	}
	entry := entryFromEvent(pol, dec, softCount, id, source, provider, actor, scope, ev)
	if entry == nil {
		return id, nil, nil
	}
	added, err := suppress(ctx, tx, rules.now, *entry)
	if err != nil {
		return 0, nil, err
	}
	if !added {
		return id, nil, nil
	}
	return id, entry, nil
}

// entryFromEvent decides whether ev suppresses, and where: bounces on the
// root list of the event's tenant (global without one), complaints there
// or on the event's own list as the policy says, unsubscribes on the
// event's own list. It returns nil when nothing is to be suppressed.
func entryFromEvent(pol *Policy, dec decision, softCount int, eventID int64, source, provider, actor, scope string, ev parse.Event) *entry {
	e := &entry{
		Address: ev.Address, Reason: ev.Reason, Class: ev.Class, Status: string(ev.Status), ReplyCode: ev.ReplyCode,
		Diagnostic: ev.Diagnostic, Source: source, Provider: provider, EventID: eventID, At: ev.OccurredAt, CreatedBy: actor,
	}
	switch ev.Type {
	case parse.EventUnsubscribe:
		e.Scope, e.Reason, e.Class = scope, ReasonUnsubscribe, parse.ClassNone
		return e
	case parse.EventComplaint:
		e.Scope, e.Class = RootScope(scope), parse.ClassComplaint
		if pol.ComplaintScope == ComplaintList {
			e.Scope = scope
		}
	case parse.EventBounce:
		if !dec.suppress || (dec.counts && softCount < dec.threshold) {
			return nil
		}
		e.Scope = RootScope(scope)
	default:
		return nil
	}
	if !dec.suppress {
		return nil
	}
	if dec.expiry > 0 {
		exp := ev.OccurredAt.Add(time.Duration(dec.expiry) * 24 * time.Hour)
		e.ExpiresAt = &exp
	}
	return e
}

// applyToRecipient folds one event into the recipient's counters and, for
// a counted failure, the soft window; it returns the failures counted in
// the window ending at the event. One statement: a delivery deletes the
// counted failures up to its time, a counted failure is kept at most once
// per UTC day and per original message, and the window is counted from
// what remains.
func applyToRecipient(ctx context.Context, tx pgx.Tx, pol *Policy, dec decision, eventID int64, scope string, ev parse.Event) (int, error) {
	isBounce := ev.Type == parse.EventBounce
	hard := b2i(isBounce && ev.Class == parse.ClassHard)
	complaint := b2i(ev.Type == parse.EventComplaint)
	sender := b2i(ev.Class == parse.ClassSender)
	delivery := ev.Type == parse.EventDelivery
	var lastBounce, lastDelivery *time.Time
	if isBounce {
		lastBounce = &ev.OccurredAt
	}
	if delivery {
		lastDelivery = &ev.OccurredAt
	}
	at := ev.OccurredAt
	day := time.Date(at.UTC().Year(), at.UTC().Month(), at.UTC().Day(), 0, 0, 0, 0, time.UTC)
	var softCount int
	err := tx.QueryRow(ctx, `
		WITH cleared AS (
			DELETE FROM soft_failures
			WHERE $13 AND tenant = $1 AND address_key = $2 AND occurred_at <= $10
		), counted AS (
			INSERT INTO soft_failures (tenant, address_key, day, message_key, event_id, reason, occurred_at)
			SELECT $1, $2, $15, $16, $8, $17, $10 WHERE $14
			ON CONFLICT DO NOTHING
			RETURNING occurred_at
		), win AS (
			SELECT count(*) AS n, min(occurred_at) AS first FROM soft_failures
			WHERE ($14 OR $13) AND tenant = $1 AND address_key = $2
				AND CASE WHEN $14 THEN occurred_at > $10 - $18::interval AND occurred_at <= $10
					ELSE occurred_at > $10 END
		)
		INSERT INTO recipients AS r (tenant, address_key, address, domain, soft_count, soft_first_at, hard_count,
			complaint_count, sender_error_count, last_event_id, last_event_type, last_event_at,
			last_bounce_at, last_delivery_at, updated_at)
		VALUES ($1, $2, $3, $4,
			(SELECT n FROM win) + (SELECT count(*) FROM counted),
			least((SELECT first FROM win), (SELECT min(occurred_at) FROM counted)),
			$5, $6, $7, $8, $9, $10, $11, $12, now())
		ON CONFLICT (tenant, address_key) DO UPDATE SET
			address = EXCLUDED.address,
			soft_count = CASE WHEN $13 OR $14 THEN EXCLUDED.soft_count ELSE r.soft_count END,
			soft_first_at = CASE WHEN $13 OR $14 THEN EXCLUDED.soft_first_at ELSE r.soft_first_at END,
			`+recipientCountersSQL+`
		RETURNING soft_count`,
		TenantOf(scope), parse.AddressKey(ev.Address), ev.Address, parse.AddressDomain(ev.Address), hard,
		complaint, sender, eventID, string(ev.Type), at, lastBounce, lastDelivery,
		delivery, dec.counts, day, messageKey(ev.OriginalMessageID), string(ev.Reason), pol.window()).Scan(&softCount)
	if err != nil {
		return 0, fmt.Errorf("update recipient: %w", err)
	}
	return softCount, nil
}

// recipientCountersSQL is the part of applyToRecipient's upsert that
// every event applies the same way; RecordBatch's set-based path
// (batchset.go) shares it.
const recipientCountersSQL = `hard_count = r.hard_count + EXCLUDED.hard_count,
			complaint_count = r.complaint_count + EXCLUDED.complaint_count,
			sender_error_count = r.sender_error_count + EXCLUDED.sender_error_count,
			last_event_id = CASE WHEN EXCLUDED.last_event_at >= coalesce(r.last_event_at, '-infinity')
				THEN EXCLUDED.last_event_id ELSE r.last_event_id END,
			last_event_type = CASE WHEN EXCLUDED.last_event_at >= coalesce(r.last_event_at, '-infinity')
				THEN EXCLUDED.last_event_type ELSE r.last_event_type END,
			last_event_at = greatest(r.last_event_at, EXCLUDED.last_event_at),
			last_bounce_at = greatest(r.last_bounce_at, EXCLUDED.last_bounce_at),
			last_delivery_at = greatest(r.last_delivery_at, EXCLUDED.last_delivery_at),
			updated_at = now()`

// messageKey is the original Message-ID as compared for one-count-per-message.
func messageKey(id string) string {
	return clip(strings.Trim(strings.TrimSpace(id), "<>"), 998)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// clean makes s storable in a text column: valid UTF-8 without NUL bytes,
// which PostgreSQL refuses and which bounce mail sometimes carries.
func clean(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// cleanJSON does the same for encoded JSON: jsonb refuses \u0000.
func cleanJSON(b []byte) []byte {
	if bytes.Contains(b, []byte(`\u0000`)) {
		b = bytes.ReplaceAll(b, []byte(`\u0000`), []byte(`\ufffd`))
	}
	return b
}

func clip(s string, n int) string {
	s = clean(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		n--
	}
	return s[:n]
}
