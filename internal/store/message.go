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
	Events []parse.Event
	// Scope is the list the events belong to ("" for global); a tenant's
	// scope keeps the recipients' state apart from other tenants'.
	Scope string
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
	p, err := prepare(in, db.now())
	if err != nil {
		return Outcome{}, err
	}
	var res recorded
	err = db.transact(ctx, func(tx pgx.Tx) error {
		var err error
		res, err = db.recordTx(ctx, tx, p)
		return err
	})
	if err != nil {
		return Outcome{}, err
	}
	db.countRecorded(in, res)
	return res.out, nil
}

// prepared is an input with what can be computed before a transaction.
type prepared struct {
	in       Input
	sum      [32]byte
	result   []byte
	received time.Time
}

func prepare(in Input, received time.Time) (*prepared, error) {
	p := &prepared{in: in, sum: sha256.Sum256(in.Raw), received: received}
	if in.Result != nil {
		var err error
		if p.result, err = json.Marshal(in.Result); err != nil {
			return nil, fmt.Errorf("store: encode result: %w", err)
		}
		p.result = cleanJSON(p.result)
	}
	return p, nil
}

// recorded is what recording one input did, with the events to count in
// metrics and drop from the check cache once the transaction commits.
type recorded struct {
	out    Outcome
	events []parse.Event
	added  []suppressed
}

// suppressed is a suppression an event added, for the metrics.
type suppressed struct {
	reason parse.Reason
	scope  string
}

// recordTx stores one prepared input inside tx: the raw bytes first, then
// each event applied in order through insertEvent under the policy.
func (db *DB) recordTx(ctx context.Context, tx pgx.Tx, p *prepared) (recorded, error) {
	in := p.in
	var res recorded
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO raw_messages (sha256, source, provider, content_type, body, received_at,
			parse_status, parse_error, kind, result)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (sha256) DO NOTHING
		RETURNING id`,
		p.sum[:], in.Source, in.Provider, in.ContentType, in.Raw, p.received,
		string(in.Status), clip(in.Error, 2000), in.Kind, p.result).Scan(&id)
	if err == pgx.ErrNoRows {
		res.out.Message, err = getMessageBySum(ctx, tx, p.sum[:])
		return res, err
	}
	if err != nil {
		return res, fmt.Errorf("insert raw: %w", err)
	}
	res.out.Created = true
	pol, err := db.currentPolicy(ctx, tx)
	if err != nil {
		return res, err
	}
	rules := applyRules{policy: pol, now: p.received}
	eventIDs := make([]int64, 0, len(in.Events))
	for _, ev := range in.Events {
		if ev.OccurredAt.IsZero() {
			ev.OccurredAt = p.received
		}
		evID, added, err := insertEvent(ctx, tx, rules, &id, in.Source, in.Provider, "", "", in.Scope, ev)
		if err != nil {
			return res, err
		}
		if evID == 0 {
			continue
		}
		eventIDs = append(eventIDs, evID)
		res.events = append(res.events, ev)
		res.out.Recorded++
		if added != nil {
			res.out.SuppressionsAdded++
			res.added = append(res.added, suppressed{reason: added.Reason, scope: added.Scope})
		}
	}
	res.out.Message = p.message(id, eventIDs)
	return res, nil
}

// message is the stored form of a newly inserted input.
func (p *prepared) message(id int64, eventIDs []int64) Message {
	in := p.in
	return Message{
		ID: id, SHA256: fmt.Sprintf("%x", p.sum), Source: in.Source, Provider: in.Provider,
		ContentType: in.ContentType, Size: len(in.Raw), ReceivedAt: p.received, ParseStatus: in.Status,
		ParseError: in.Error, Kind: in.Kind, Result: p.result, EventIDs: eventIDs,
	}
}

// countRecorded drops the recorded addresses from the check cache and
// updates the metrics, after commit.
func (db *DB) countRecorded(in Input, res recorded) {
	for _, ev := range res.events {
		db.invalidate(parse.AddressKey(ev.Address))
		db.metrics.countEvent(in.Source, in.Provider, ev)
	}
	for _, a := range res.added {
		db.metrics.countAdded(string(a.reason), a.scope, 1)
	}
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
