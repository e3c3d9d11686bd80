package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file is the feed of changes to the suppression lists: the
// transactional outbox behind outbound webhooks and GET /v1/stream. Every
// path that puts an address on a list or takes it off (the write path,
// adds and imports by hand, deletes, the expiry cleanup) records one
// change row per entry in its own transaction, and with it one delivery
// per subscription that wants the change (changesSQL).

// ChangeType is what happened to an entry of a suppression list.
type ChangeType string

// Change types.
const (
	// ChangeSuppressionAdded: the address was put on the list (by a
	// bounce, a complaint, an unsubscribe, by hand or by an import), or an
	// expired entry of it was renewed.
	ChangeSuppressionAdded ChangeType = "suppression_added"
	// ChangeSuppressionRemoved: the entry was deleted, or it expired and
	// the cleanup removed it.
	ChangeSuppressionRemoved ChangeType = "suppression_removed"
	// ChangeBounce and ChangeComplaint: a bounce or a complaint event was
	// recorded (whether or not it suppressed; one that did is also a
	// suppression_added).
	ChangeBounce    ChangeType = "bounce"
	ChangeComplaint ChangeType = "complaint"
)

// ChangeTypes lists every change type.
func ChangeTypes() []ChangeType {
	return []ChangeType{ChangeSuppressionAdded, ChangeSuppressionRemoved, ChangeBounce, ChangeComplaint}
}

// Valid reports whether t is a known change type.
func (t ChangeType) Valid() bool {
	switch t {
	case ChangeSuppressionAdded, ChangeSuppressionRemoved, ChangeBounce, ChangeComplaint:
		return true
	}
	return false
}

// Change is one change of a suppression list, as webhooks and the stream
// deliver it.
type Change struct {
	// ID is the change's id: a stream's event id, a delivery's webhook-id.
	ID         int64      `json:"id"`
	Type       ChangeType `json:"type"`
	Email      string     `json:"email"`
	Scope      string     `json:"scope"`
	Reason     string     `json:"reason"`
	Class      string     `json:"class"`
	Status     string     `json:"status"`
	ReplyCode  string     `json:"reply_code"`
	Source     string     `json:"source"`
	Provider   string     `json:"provider"`
	EventID    *int64     `json:"event_id"`
	Actor      string     `json:"actor"`
	Note       string     `json:"note"`
	ExpiresAt  *time.Time `json:"expires_at"`
	OccurredAt time.Time  `json:"occurred_at"`
	CreatedAt  time.Time  `json:"created_at"`
	// pos is the change's place in the feed.
	pos Position
}

// Position is a place in the feed of changes: just after the change it
// names. Changes are read in (transaction, id) order (see migration
// 00019), so a position holds both.
type Position struct {
	xid, id int64
}

// Pos is the change's place in the feed.
func (c Change) Pos() Position { return c.pos }

// changeColumns are the columns of a change: its row c (expanded into
// its changes as i by changeItemsSQL) joined with its event ce
// (changeEventJoin). A change's own reason and class come first: a
// suppression_added change of the write path keeps its entry's (a soft
// limit's reason is not its last event's), and reads the rest.
const changeColumns = `i.id, c.xid, i.type, coalesce(ce.address, c.address) AS address, c.scope,
	coalesce(nullif(i.reason, ''), ce.reason, i.reason) AS reason, coalesce(nullif(i.class, ''), ce.class, i.class) AS class,
	coalesce(ce.status, c.status) AS status, coalesce(ce.reply_code, c.reply_code) AS reply_code,
	coalesce(ce.source, c.source) AS source, coalesce(ce.provider, c.provider) AS provider, c.event_id, c.actor, c.note,
	i.expires_at, c.occurred_at, c.created_at`

// changeItemsSQL expands a row c of changes into the changes it stands
// for (as i: id, type, reason, class, expires_at): itself, and when it
// is a bounce or complaint that put its address on a list
// (adds_suppression, migration 00032), the suppression_added change it
// caused, with the next id and the row's reason, class and expiry (the
// bounce reads its own from its event).
const changeItemsSQL = ` CROSS JOIN LATERAL (
		SELECT c.id AS id, c.type AS type, CASE WHEN c.adds_suppression THEN '' ELSE c.reason END AS reason,
			CASE WHEN c.adds_suppression THEN '' ELSE c.class END AS class,
			CASE WHEN c.adds_suppression THEN NULL ELSE c.expires_at END AS expires_at
		UNION ALL
		SELECT c.id + 1, 'suppression_added', c.reason, c.class, c.expires_at WHERE c.adds_suppression) i`

// changeByIDSQL reads the change whose id is the SQL expression id: a
// row's own, or the one after it of a row that adds a suppression.
func changeByIDSQL(id string) string {
	return `SELECT ` + changeColumns + ` FROM changes c` + changeItemsSQL + changeEventJoin("c") + changeIDIs(id)
}

// changeIDIs is the WHERE clause that keeps, of the rows of changes c
// expanded as i (changeItemsSQL), the change whose id is the SQL
// expression id.
func changeIDIs(id string) string {
	return ` WHERE ` + changeRowOf("c", id) + ` AND i.id = ` + id
}

// changeRowOf is the condition on a row of changes (alias c) that it
// stands for the change whose id is the SQL expression id: the row's
// own, or the one after a row adding a suppression.
func changeRowOf(c, id string) string {
	return c + `.id BETWEEN ` + id + ` - 1 AND ` + id + ` AND (` + c + `.id = ` + id + ` OR ` + c + `.adds_suppression)`
}

// changeTypeByIDSQL is the type of the change whose id is the SQL
// expression id (as changeByIDSQL finds it, without its event).
func changeTypeByIDSQL(id string) string {
	return `SELECT i.type FROM changes c` + changeItemsSQL + changeIDIs(id)
}

// changeEventJoin joins the change c (an alias) with its event as ce:
// a bounce or complaint change keeps only its event's id, times and
// scope (its other fields are empty; migration 00030), a
// suppression_added change of the write path its entry's reason and
// class too, and the event has the rest. Both were written in one
// transaction, so they share now(), the partition key of events, and
// events_time finds the row.
func changeEventJoin(c string) string {
	return ` LEFT JOIN LATERAL (SELECT coalesce(e.address, e.address_key) AS address, e.reason, e.class, e.status, e.reply_code, e.source, e.provider
		FROM events e WHERE ` + c + `.address = '' AND e.id = ` + c + `.event_id AND e.created_at = ` + c + `.created_at
			AND e.occurred_at = ` + c + `.occurred_at LIMIT 1) ce ON true`
}

func changeDest(c *Change) []any {
	return []any{&c.ID, &c.pos.xid, &c.Type, &c.Email, &c.Scope, &c.Reason, &c.Class, &c.Status, &c.ReplyCode,
		&c.Source, &c.Provider, &c.EventID, &c.Actor, &c.Note, &c.ExpiresAt, &c.OccurredAt, &c.CreatedAt}
}

// ChangeFilter selects changes.
type ChangeFilter struct {
	// Tenant with OnlyTenant keeps one tenant's changes ("" for the
	// untenanted scopes); without OnlyTenant every tenant's are read.
	Tenant     string
	OnlyTenant bool
	// Types and Scopes, when not empty, keep changes of those types and
	// those exact scopes.
	Types  []ChangeType
	Scopes []string
}

// ErrChangeGone means a stream was resumed from a change the retention
// has deleted: changes after it may have been deleted too.
var ErrChangeGone = errors.New("store: change no longer kept")

// ChangesHead is the position just after every change committed so far
// (and at least every change of a transaction older than the oldest one
// still running): where a stream that wants only new changes starts.
func (db *DB) ChangesHead(ctx context.Context) (Position, error) {
	var xmin int64
	err := db.read(ctx, func(q *pgxpool.Pool) error {
		return q.QueryRow(ctx, horizonSQL).Scan(&xmin)
	})
	if err != nil {
		return Position{}, err
	}
	return Position{xid: xmin - 1, id: math.MaxInt64}, nil
}

// horizonSQL is the oldest transaction still running: every transaction
// older has committed or rolled back, so no change of one can appear
// later.
const horizonSQL = `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`

// ChangePosition is the position just after change id, for a stream
// resumed from it. It returns ErrChangeGone when the retention deleted
// it, ErrNotFound for an id that never was a change.
func (db *DB) ChangePosition(ctx context.Context, id int64) (Position, error) {
	var pos Position
	var pruned int64
	err := db.read(ctx, func(q *pgxpool.Pool) error {
		return q.QueryRow(ctx, `SELECT coalesce((SELECT xid FROM changes c WHERE `+changeRowOf("c", "$1")+`), -1),
			coalesce((SELECT change_id FROM changes_pruned WHERE id = 1), 0)`, id).Scan(&pos.xid, &pruned)
	})
	switch {
	case err != nil:
		return Position{}, err
	case pos.xid >= 0:
		pos.id = id
		return pos, nil
	case id <= pruned:
		return Position{}, ErrChangeGone
	}
	return Position{}, ErrNotFound
}

// ChangePage is what ReadChanges read.
type ChangePage struct {
	Changes []Change
	// Next is where to read from next: after the last change returned,
	// or, when fewer than the limit matched, after every change that
	// could be read (so changes the filter skips are not read again).
	Next Position
	// Held says changes exist that could not be read yet, their
	// transactions being younger than one still running: read again soon.
	Held bool
}

// ReadChanges returns up to limit changes matching f after pos, in feed
// order. Only changes of transactions older than every transaction still
// running are read: none can ever appear before the page's Next.
func (db *DB) ReadChanges(ctx context.Context, pos Position, f ChangeFilter, limit int) (ChangePage, error) {
	limit = clampLimit(limit)
	page := ChangePage{Next: pos}
	err := db.read(ctx, func(q *pgxpool.Pool) error {
		// The horizon is read first, in a statement of its own: the rows
		// are read under a later snapshot, which sees every transaction
		// older than the horizon finished.
		var xmin int64
		if err := q.QueryRow(ctx, horizonSQL).Scan(&xmin); err != nil {
			return err
		}
		args := []any{pos.xid, pos.id, xmin}
		arg := func(v any) string {
			args = append(args, v)
			return fmt.Sprintf("$%d", len(args))
		}
		// A row is read when one of its changes is after pos and of a
		// type wanted (a row adding a suppression stands for two,
		// changeItemsSQL); then its changes are, in feed order.
		itemAfter := func(id, typ string) string {
			c := "(xid, " + id + ") > ($1, $2)"
			if len(f.Types) > 0 {
				c += " AND " + typ + " = ANY($4)"
			}
			return c
		}
		if len(f.Types) > 0 {
			types := make([]string, len(f.Types))
			for i, t := range f.Types {
				types[i] = string(t)
			}
			arg(types)
		}
		conds := []string{"xid >= $1", "xid < $3", "(" + itemAfter("id", "type") + " OR adds_suppression AND " +
			itemAfter("id + 1", "'suppression_added'") + ")"}
		if f.OnlyTenant {
			conds = append(conds, "bounced_scope_tenant(scope) = "+arg(f.Tenant))
		}
		if len(f.Scopes) > 0 {
			conds = append(conds, "scope = ANY("+arg(f.Scopes)+")")
		}
		lim := arg(limit)
		rows, err := q.Query(ctx, `SELECT `+changeColumns+` FROM (SELECT * FROM changes WHERE `+
			strings.Join(conds, " AND ")+` ORDER BY xid, id LIMIT `+lim+`) c`+changeItemsSQL+changeEventJoin("c")+
			` WHERE `+strings.ReplaceAll(itemAfter("i.id", "i.type"), "xid", "c.xid")+` ORDER BY c.xid, i.id LIMIT `+lim, args...)
		if err != nil {
			return err
		}
		var c Change
		if _, err := pgx.ForEachRow(rows, changeDest(&c), func() error {
			c.pos.id = c.ID
			page.Changes = append(page.Changes, c)
			return nil
		}); err != nil {
			return err
		}
		if len(page.Changes) == limit {
			page.Next = page.Changes[len(page.Changes)-1].pos
			return nil
		}
		if xmin-1 > pos.xid || xmin-1 == pos.xid && pos.id < math.MaxInt64 {
			page.Next = Position{xid: xmin - 1, id: math.MaxInt64}
		}
		return q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM changes WHERE xid >= $1)`, xmin).Scan(&page.Held)
	})
	if err != nil {
		return ChangePage{Next: pos}, err
	}
	return page, nil
}

// changesSQL records, from the rows of the CTE or table src (type, scope,
// address, reason, class, status, reply_code, source, provider, event_id,
// actor, note, expires_at, occurred_at, adds_suppression), one change row
// each (the CTE "ch"; a row adding a suppression stands for two changes,
// changeItemsSQL) and one delivery of each change to each enabled
// subscription that wants it, due at once (the CTE "dl"). now is the SQL
// expression of the time.
func changesSQL(src, now string) string {
	return `ch AS (
			INSERT INTO changes (type, scope, address, reason, class, status, reply_code, source, provider, event_id,
				actor, note, expires_at, occurred_at, adds_suppression)
			SELECT type, scope, address, reason, class, status, reply_code, source, provider, event_id,
				actor, note, expires_at, occurred_at, adds_suppression FROM ` + src + `
			RETURNING id, type, scope, bounced_scope_tenant(scope) AS tenant, adds_suppression, reason, class, expires_at
		), dl AS (
			INSERT INTO deliveries (subscription_id, change_id, next_attempt_at)
			SELECT s.id, i.id, ` + now + ` FROM ch c` + changeItemsSQL + `
				JOIN subscriptions s ON s.enabled AND i.type = ANY (s.event_types)
				AND (s.tenant = '' OR s.tenant = c.tenant) AND (cardinality(s.scopes) = 0 OR c.scope = ANY (s.scopes))
		)`
}

// pruneChanges deletes changes and deliveries older than the retention
// (a batch at a time), remembering the newest change deleted.
func (db *DB) pruneChanges(ctx context.Context, before time.Time) error {
	for {
		var n, d int64
		err := db.transact(ctx, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, `
				WITH gone AS (
					DELETE FROM changes WHERE ctid = ANY (ARRAY(
						SELECT ctid FROM changes WHERE created_at < $1 LIMIT $2))
					RETURNING id + adds_suppression::int AS id
				), mark AS (
					INSERT INTO changes_pruned (id, change_id) SELECT 1, max(id) FROM gone HAVING count(*) > 0
					ON CONFLICT (id) DO UPDATE SET change_id = greatest(changes_pruned.change_id, EXCLUDED.change_id)
				)
				SELECT count(*) FROM gone`, before, cleanupBatch).Scan(&n); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `DELETE FROM deliveries WHERE id = ANY (ARRAY(
				SELECT id FROM deliveries WHERE created_at < $1 LIMIT $2))`, before, cleanupBatch)
			d = tag.RowsAffected()
			return err
		})
		if err != nil || n < cleanupBatch && d < cleanupBatch {
			return err
		}
	}
}
