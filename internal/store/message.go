package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/parse"
)

// ParseStatus says whether a raw input has been read.
type ParseStatus string

// Parse statuses of raw inputs.
const (
	ParsePending ParseStatus = "pending"
	ParseParsed  ParseStatus = "parsed"
	ParseFailed  ParseStatus = "failed"
)

// Input is one raw input and what was read from it.
type Input struct {
	Source      string // http, webhook, imap, maildir, smtp
	Provider    string // sendgrid, ses, a mailbox name; may be empty
	ContentType string
	Raw         []byte
	// Status is ParseParsed with Kind, Result and Events set, or
	// ParseFailed with Error set. The raw bytes are kept either way.
	Status ParseStatus
	Error  string
	Kind   string
	Result any // stored as JSON
	Events []NewEvent
}

// Message is a stored raw input.
type Message struct {
	ID          int64           `json:"id"`
	SHA256      string          `json:"sha256"`
	Source      string          `json:"source"`
	Provider    string          `json:"provider"`
	ContentType string          `json:"content_type"`
	Size        int             `json:"size"`
	ReceivedAt  time.Time       `json:"received_at"`
	ParseStatus ParseStatus     `json:"parse_status"`
	ParseError  string          `json:"parse_error"`
	Kind        string          `json:"kind"`
	Result      json.RawMessage `json:"result"`
	EventIDs    []int64         `json:"event_ids"`
}

// Outcome is what recording an input did.
type Outcome struct {
	Message Message
	// Created is false when the same bytes were stored before; nothing
	// else was written then.
	Created bool
	// Recorded counts events written (replayed provider events are not).
	Recorded int
	// SuppressionsAdded counts addresses newly suppressed.
	SuppressionsAdded int
}

// Record stores a raw input and, in the same transaction, its events, the
// recipients' state and the suppression list. Identical bytes stored
// before make it a no-op that returns the earlier message.
func (db *DB) Record(ctx context.Context, in Input) (Outcome, error) {
	sum := sha256.Sum256(in.Raw)
	var result []byte
	if in.Result != nil {
		var err error
		if result, err = json.Marshal(in.Result); err != nil {
			return Outcome{}, fmt.Errorf("store: encode result: %w", err)
		}
		result = cleanJSON(result)
	}
	received := db.now()
	var out Outcome
	var recorded, added []NewEvent
	err := db.transact(ctx, func(tx pgx.Tx) error {
		out, recorded, added = Outcome{}, recorded[:0], added[:0]
		var id int64
		err := tx.QueryRow(ctx, `
			INSERT INTO raw_messages (sha256, source, provider, content_type, body, received_at,
				parse_status, parse_error, kind, result)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (sha256) DO NOTHING
			RETURNING id`,
			sum[:], in.Source, in.Provider, in.ContentType, in.Raw, received,
			string(in.Status), clip(in.Error, 2000), in.Kind, result).Scan(&id)
		if err == pgx.ErrNoRows {
			out.Message, err = getMessageBySum(ctx, tx, sum[:])
			return err
		}
		if err != nil {
			return fmt.Errorf("insert raw: %w", err)
		}
		out.Created = true
		pol, err := db.currentPolicy(ctx, tx)
		if err != nil {
			return err
		}
		rules := applyRules{policy: pol, now: received}
		eventIDs := make([]int64, 0, len(in.Events))
		for _, ev := range in.Events {
			if ev.OccurredAt.IsZero() {
				ev.OccurredAt = received
			}
			evID, isNew, err := insertEvent(ctx, tx, rules, &id, in.Source, in.Provider, "", "", ev)
			if err != nil {
				return err
			}
			if evID == 0 {
				continue
			}
			eventIDs = append(eventIDs, evID)
			recorded = append(recorded, ev)
			out.Recorded++
			if isNew {
				out.SuppressionsAdded++
				added = append(added, ev)
			}
		}
		out.Message = Message{
			ID: id, SHA256: fmt.Sprintf("%x", sum), Source: in.Source, Provider: in.Provider,
			ContentType: in.ContentType, Size: len(in.Raw), ReceivedAt: received, ParseStatus: in.Status,
			ParseError: in.Error, Kind: in.Kind, Result: result, EventIDs: eventIDs,
		}
		return nil
	})
	if err != nil {
		return Outcome{}, err
	}
	for _, ev := range recorded {
		db.invalidate(parse.AddressKey(ev.Address))
		db.metrics.events.WithLabelValues(string(ev.Type), string(ev.Class)).Inc()
	}
	for _, ev := range added {
		db.metrics.suppressionsAdded.WithLabelValues(string(ev.Reason)).Inc()
	}
	return out, nil
}

const messageColumns = `id, encode(sha256, 'hex'), source, provider, content_type, length(body), received_at,
	parse_status, parse_error, kind, result,
	coalesce((SELECT array_agg(e.id ORDER BY e.id) FROM events e WHERE e.raw_id = raw_messages.id), '{}')`

func scanMessage(row pgx.CollectableRow) (Message, error) {
	var m Message
	var result []byte
	err := row.Scan(&m.ID, &m.SHA256, &m.Source, &m.Provider, &m.ContentType, &m.Size, &m.ReceivedAt,
		&m.ParseStatus, &m.ParseError, &m.Kind, &result, &m.EventIDs)
	m.Result = result
	return m, err
}

func getMessageBySum(ctx context.Context, tx pgx.Tx, sum []byte) (Message, error) {
	rows, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM raw_messages WHERE sha256 = $1`, sum)
	if err != nil {
		return Message{}, err
	}
	return pgx.CollectExactlyOneRow(rows, scanMessage)
}

// GetMessage returns a stored input without its bytes.
func (db *DB) GetMessage(ctx context.Context, id int64) (Message, error) {
	var m Message
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+messageColumns+` FROM raw_messages WHERE id = $1`, id)
		if err != nil {
			return err
		}
		m, err = pgx.CollectExactlyOneRow(rows, scanMessage)
		return err
	})
	return m, err
}

// GetMessageBody returns a stored input's bytes and content type.
func (db *DB) GetMessageBody(ctx context.Context, id int64) ([]byte, string, error) {
	var body []byte
	var ct string
	err := db.transact(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT body, content_type FROM raw_messages WHERE id = $1`, id).Scan(&body, &ct)
	})
	return body, ct, err
}
