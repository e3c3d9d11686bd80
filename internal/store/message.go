package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
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
	// Quarantined says the input was set aside by QuarantineMail: stored,
	// nothing read from it.
	Quarantined bool
}

// prepared is an input with what can be computed before a transaction.
type prepared struct {
	in       Input
	sum      [32]byte
	result   []byte
	received time.Time
	// body is what is stored of in.Raw: the bytes, or their DEFLATE when
	// deflatedSize is not -1; resultZ is result compressed after it, or
	// nil when result is stored as it is (see body.go).
	body         []byte
	deflatedSize int
	resultZ      []byte
}

func prepare(in Input, received time.Time) (*prepared, error) {
	cloned := false
	for i, ev := range in.Events {
		if id := cleanEventID(ev.ProviderEventID); id != ev.ProviderEventID {
			if !cloned {
				in.Events, cloned = slices.Clone(in.Events), true // the caller's slice stays as it was
			}
			in.Events[i].ProviderEventID = id
		}
	}
	p := &prepared{in: in, sum: sha256.Sum256(in.Raw), received: received}
	if in.Result != nil {
		var err error
		if p.result, err = json.Marshal(in.Result); err != nil {
			return nil, fmt.Errorf("store: encode result: %w", err)
		}
		p.result = cleanJSON(p.result)
	}
	p.body, p.deflatedSize, p.resultZ = deflateBody(in.Raw, p.result)
	return p, nil
}

// eventIDMax bounds a stored provider event id: ids are keys of the
// events partitions' provider_event indexes, whose rows PostgreSQL caps
// at about 2.7 kB.
const eventIDMax = 1000

// cleanEventID makes a provider's event id storable as a key: NUL bytes
// and invalid UTF-8 become U+FFFD (removing them could make two ids one),
// and an id too long for the index is replaced by its SHA-256, which
// keeps it as distinct as it was.
func cleanEventID(id string) string {
	if strings.IndexByte(id, 0) >= 0 {
		id = strings.ReplaceAll(id, "\x00", "\uFFFD")
	}
	id = strings.ToValidUTF8(id, "\uFFFD")
	if len(id) > eventIDMax {
		sum := sha256.Sum256([]byte(id))
		id = "sha256:" + hex.EncodeToString(sum[:])
	}
	return id
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
		db.metrics.countEvent(in.Source, in.Provider, db.mailboxProviderOf(ev.Address), ev)
	}
	for _, a := range res.added {
		db.metrics.countAdded(string(a.reason), a.scope, 1)
	}
}

const messageColumns = `id, encode(sha256, 'hex'), source, provider, content_type, coalesce(deflated_size, length(body)), received_at,
	parse_status, parse_error, kind, result, result_deflated, CASE WHEN result_deflated IS NOT NULL THEN body END, deflated_size, deflate_dict,
	coalesce((SELECT array_agg(e.id ORDER BY e.id) FROM events e WHERE e.raw_id = raw_messages.id), '{}')`

func scanMessage(row pgx.CollectableRow) (Message, error) {
	var m Message
	var result, resultZ, body []byte
	var size *int32
	var dict *int16
	if err := row.Scan(&m.ID, &m.SHA256, &m.Source, &m.Provider, &m.ContentType, &m.Size, &m.ReceivedAt,
		&m.ParseStatus, &m.ParseError, &m.Kind, &result, &resultZ, &body, &size, &dict, &m.EventIDs); err != nil {
		return m, err
	}
	if resultZ != nil {
		if size == nil {
			return m, fmt.Errorf("%w: a compressed result after a body kept as received", errBadBody)
		}
		var err error
		if result, err = inflateResult(body, *size, dict, resultZ); err != nil {
			return m, err
		}
	}
	m.Result = result
	return m, nil
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
	var size *int32
	var dict *int16
	err := db.transact(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT body, content_type, deflated_size, deflate_dict FROM raw_messages WHERE id = $1`, id).
			Scan(&body, &ct, &size, &dict)
	})
	if err != nil {
		return nil, "", err
	}
	body, err = inflateBody(body, size, dict)
	return body, ct, err
}
