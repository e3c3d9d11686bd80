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
	// Evidence is what decided Reason and Class, for events read from a
	// report.
	Evidence   *parse.Evidence `json:"evidence,omitempty"`
	OccurredAt time.Time       `json:"occurred_at"`
	CreatedAt  time.Time       `json:"created_at"`
	// Unverified: a bounce that matched nothing reported sent (see
	// parse.Event.Unverified).
	Unverified bool `json:"unverified,omitempty"`
}

// EventFilter selects events for ListEvents and CountEvents.
type EventFilter struct {
	Address string // normalised; empty for all
	// Tenant with OnlyTenant keeps the events of one tenant ("" for the
	// untenanted ones); without OnlyTenant every tenant's events are listed.
	Tenant     string
	OnlyTenant bool
	Type       parse.EventType
	Class      parse.Class  // empty for all
	Reason     parse.Reason // empty for all
	Since      time.Time    // inclusive
	Until      time.Time    // exclusive
	Cursor     string       // ListEvents only
	Limit      int          // ListEvents only
}

// where is the condition of f without its cursor, and its arguments.
func (f EventFilter) where() ([]string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Address != "" {
		// events_address_time holds the key's hash (migration 00028);
		// the key itself tells apart the rare addresses that share one.
		k := arg(parse.AddressKey(f.Address))
		where = append(where, "hashtextextended(address_key, 0) = hashtextextended("+k+", 0)", "address_key = "+k)
	}
	if f.OnlyTenant {
		where = append(where, "tenant = "+arg(f.Tenant))
	}
	if f.Type != "" {
		where = append(where, "type = "+arg(string(f.Type)))
	}
	if f.Class != "" {
		where = append(where, "class = "+arg(string(f.Class)))
	}
	if f.Reason != "" {
		where = append(where, "reason = "+arg(string(f.Reason)))
	}
	if !f.Since.IsZero() {
		where = append(where, "occurred_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "occurred_at < "+arg(f.Until))
	}
	return where, args
}

// ListEvents returns events newest first and the cursor of the next page
// ("" when this is the last).
func (db *DB) ListEvents(ctx context.Context, f EventFilter) ([]Event, string, error) {
	where, args := f.where()
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Cursor != "" {
		at, id, err := decodeTimeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		// The first condition is implied by the second; it is the one the
		// indexes on occurred_at can start a scan from.
		a := arg(at)
		where = append(where, "occurred_at <= "+a, "(occurred_at, id) < ("+a+", "+arg(id)+")")
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

// CountEvents counts every event f selects (its cursor and limit aside).
// It reads each matching row: its cost grows with the count.
func (db *DB) CountEvents(ctx context.Context, f EventFilter) (int64, error) {
	where, args := f.where()
	q := `SELECT count(*) FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int64
	err := db.transact(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, q, args...).Scan(&n)
	})
	return n, err
}

// eventDomain is an event's domain: its address key's (migration 00031
// dropped the column; a normalised address's domain is lower case).
const eventDomain = `split_part(address_key, '@', -1)`

const eventColumns = `id, raw_id, coalesce(address, address_key), ` + eventDomain + `, type, class, reason, status, reply_code, diagnostic,
	reporting_mta, remote_mta, original_message_id, source, provider, coalesce(provider_event_id, ''),
	scope, actor, note, occurred_at, created_at, evidence, unverified`

func scanEvent(row pgx.CollectableRow) (Event, error) {
	var e Event
	err := row.Scan(&e.ID, &e.RawID, &e.Address, &e.Domain, &e.Type, &e.Class, &e.Reason, &e.Status,
		&e.ReplyCode, &e.Diagnostic, &e.ReportingMTA, &e.RemoteMTA, &e.OriginalMessageID, &e.Source,
		&e.Provider, &e.ProviderEventID, &e.Scope, &e.Actor, &e.Note, &e.OccurredAt, &e.CreatedAt, &e.Evidence, &e.Unverified)
	return e, err
}

// recipientCountersSQL is what every event does to its recipient r's
// counters and last event, n being the event's values (record.go).
const recipientCountersSQL = `hard_count = r.hard_count + n.hard_count,
				complaint_count = r.complaint_count + n.complaint_count,
				sender_error_count = r.sender_error_count + n.sender_error_count,
				last_event_id = CASE WHEN n.last_event_at >= coalesce(r.last_event_at, '-infinity')
					THEN n.last_event_id ELSE r.last_event_id END,
				last_event_type = CASE WHEN n.last_event_at >= coalesce(r.last_event_at, '-infinity')
					THEN n.last_event_type ELSE r.last_event_type END,
				last_event_at = greatest(r.last_event_at, n.last_event_at),
				last_bounce_at = greatest(r.last_bounce_at, n.last_bounce_at),
				last_delivery_at = greatest(r.last_delivery_at, n.last_delivery_at),
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
