package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file keeps outbound webhook subscriptions (POST /v1/subscriptions)
// and their deliveries: what the API shows and edits, and what a
// deliverer (internal/push) claims, sends and settles. (The subscriptions
// bounced confirms for providers, SNS topics, are another thing:
// subscription.go.)

// SubscriptionsMax is the most outbound subscriptions kept.
const SubscriptionsMax = 1000

// Subscription is an outbound webhook subscription: where to send which
// changes, and how its deliveries went.
type Subscription struct {
	ID          int64        `json:"id"`
	URL         string       `json:"url"`
	EventTypes  []ChangeType `json:"event_types"`
	Scopes      []string     `json:"scopes"`
	Tenant      string       `json:"tenant"`
	Description string       `json:"description"`
	Enabled     bool         `json:"enabled"`
	// DisabledReason says why bounced turned it off (the receiver
	// answered 410 Gone), or who did.
	DisabledReason string     `json:"disabled_reason"`
	LastAttemptAt  *time.Time `json:"last_attempt_at"`
	LastStatus     *int       `json:"last_status"`
	LastError      string     `json:"last_error"`
	LastSuccessAt  *time.Time `json:"last_success_at"`
	// Pending counts deliveries waiting for an attempt, Dead those given
	// up after the last attempt.
	Pending   int64     `json:"pending"`
	Dead      int64     `json:"dead"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

const subscriptionColumns = `s.id, s.url, s.event_types, s.scopes, s.tenant, s.description, s.enabled, s.disabled_reason,
	s.last_attempt_at, s.last_status, s.last_error, s.last_success_at,
	(SELECT count(*) FROM deliveries d WHERE d.state = 'pending' AND d.subscription_id = s.id),
	(SELECT count(*) FROM deliveries d WHERE d.state = 'dead' AND d.subscription_id = s.id),
	s.created_by, s.created_at, s.updated_at`

func scanSubscription(row pgx.CollectableRow) (Subscription, error) {
	var s Subscription
	var types []string
	err := row.Scan(&s.ID, &s.URL, &types, &s.Scopes, &s.Tenant, &s.Description, &s.Enabled, &s.DisabledReason,
		&s.LastAttemptAt, &s.LastStatus, &s.LastError, &s.LastSuccessAt, &s.Pending, &s.Dead, &s.CreatedBy,
		&s.CreatedAt, &s.UpdatedAt)
	s.EventTypes = make([]ChangeType, len(types))
	for i, t := range types {
		s.EventTypes[i] = ChangeType(t)
	}
	if s.Scopes == nil {
		s.Scopes = []string{}
	}
	return s, err
}

// NewSubscription is a subscription to create; the caller has validated
// its URL, secret, types and scopes.
type NewSubscription struct {
	URL         string
	Secret      string
	EventTypes  []ChangeType
	Scopes      []string
	Tenant      string
	Description string
	CreatedBy   string
}

// ErrTooManySubscriptions means SubscriptionsMax subscriptions exist.
var ErrTooManySubscriptions = errors.New("store: too many subscriptions")

// CreateSubscription stores a subscription; from its commit on, changes
// it wants get a delivery to it. ErrTooManySubscriptions past the cap.
func (db *DB) CreateSubscription(ctx context.Context, n NewSubscription) (Subscription, error) {
	var s Subscription
	err := db.transact(ctx, func(tx pgx.Tx) error {
		// The cap is checked under a lock, so concurrent creations cannot
		// pass it together.
		if _, err := tx.Exec(ctx, `LOCK TABLE subscriptions IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		var count int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM subscriptions`).Scan(&count); err != nil {
			return err
		}
		if count >= SubscriptionsMax {
			return ErrTooManySubscriptions
		}
		var id int64
		if err := tx.QueryRow(ctx, `
			INSERT INTO subscriptions (url, secret, event_types, scopes, tenant, description, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			n.URL, n.Secret, typeNames(n.EventTypes), nonNil(n.Scopes), n.Tenant, clip(n.Description, 1000), n.CreatedBy).Scan(&id); err != nil {
			return err
		}
		var err error
		s, err = getSubscription(ctx, tx, id)
		return err
	})
	return s, err
}

func typeNames(ts []ChangeType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func getSubscription(ctx context.Context, tx pgx.Tx, id int64) (Subscription, error) {
	rows, err := tx.Query(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions s WHERE s.id = $1`, id)
	if err != nil {
		return Subscription{}, err
	}
	return pgx.CollectExactlyOneRow(rows, scanSubscription)
}

// GetSubscription returns one subscription; ErrNotFound if there is none.
func (db *DB) GetSubscription(ctx context.Context, id int64) (Subscription, error) {
	var s Subscription
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var err error
		s, err = getSubscription(ctx, tx, id)
		return err
	})
	return s, err
}

// ListSubscriptions returns the subscriptions of one tenant (only, "" for
// the untenanted ones), or every subscription, oldest first.
func (db *DB) ListSubscriptions(ctx context.Context, tenant string, only bool) ([]Subscription, error) {
	var out []Subscription
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+subscriptionColumns+` FROM subscriptions s
			WHERE NOT $2 OR s.tenant = $1 ORDER BY s.id`, tenant, only)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanSubscription)
		return err
	})
	if out == nil {
		out = []Subscription{}
	}
	return out, err
}

// SubscriptionPatch changes a subscription; nil fields stay as they are.
type SubscriptionPatch struct {
	URL         *string
	Secret      *string
	EventTypes  *[]ChangeType
	Scopes      *[]string
	Description *string
	Enabled     *bool
}

// UpdateSubscription applies p; ErrNotFound if there is no such
// subscription. Turning it on again clears why it was off; its deliveries
// waiting meanwhile are then sent.
func (db *DB) UpdateSubscription(ctx context.Context, id int64, p SubscriptionPatch, actor string) (Subscription, error) {
	var s Subscription
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var types *[]string
		if p.EventTypes != nil {
			t := typeNames(*p.EventTypes)
			types = &t
		}
		var scopes *[]string
		if p.Scopes != nil {
			sc := nonNil(*p.Scopes)
			scopes = &sc
		}
		var desc *string
		if p.Description != nil {
			d := clip(*p.Description, 1000)
			desc = &d
		}
		tag, err := tx.Exec(ctx, `
			UPDATE subscriptions SET url = coalesce($2, url), secret = coalesce($3, secret),
				event_types = coalesce($4, event_types), scopes = coalesce($5, scopes),
				description = coalesce($6, description), enabled = coalesce($7, enabled),
				disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason WHEN $7 THEN '' ELSE 'turned off by ' || $8 END,
				updated_at = now()
			WHERE id = $1`, id, p.URL, p.Secret, types, scopes, desc, p.Enabled, actor)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if s, err = getSubscription(ctx, tx, id); err != nil {
			return err
		}
		if s.Enabled {
			_, err = tx.Exec(ctx, `SELECT pg_notify('`+channelDeliveries+`', '')`)
		}
		return err
	})
	return s, err
}

// DeleteSubscription deletes a subscription and its deliveries;
// ErrNotFound if there is none.
func (db *DB) DeleteSubscription(ctx context.Context, id int64) error {
	return db.transact(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM subscriptions WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return err
	})
}

// DeliveryState is where a delivery stands.
type DeliveryState string

// Delivery states.
const (
	DeliveryPending   DeliveryState = "pending"   // waiting for its next attempt
	DeliveryDelivered DeliveryState = "delivered" // a 2xx answer
	DeliveryDead      DeliveryState = "dead"      // given up: replay it to try again
)

// Valid reports whether s is a known state.
func (s DeliveryState) Valid() bool {
	return s == DeliveryPending || s == DeliveryDelivered || s == DeliveryDead
}

// Delivery is one change sent (or to be sent) to one subscription.
type Delivery struct {
	ID             int64         `json:"id"`
	SubscriptionID int64         `json:"subscription_id"`
	ChangeID       int64         `json:"change_id"`
	ChangeType     ChangeType    `json:"change_type"`
	State          DeliveryState `json:"state"`
	Attempts       int           `json:"attempts"`
	// NextAttemptAt is when a pending delivery is tried next (null once
	// delivered or dead).
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	// LastStatus is the HTTP status of the last attempt; null when it got
	// no answer (LastError says why).
	LastStatus  *int       `json:"last_status"`
	LastError   string     `json:"last_error"`
	DeliveredAt *time.Time `json:"delivered_at"`
	CreatedAt   time.Time  `json:"created_at"`
}

const deliveryColumns = `d.id, d.subscription_id, d.change_id, coalesce(c.type, ''), d.state, d.attempts,
	CASE WHEN d.state = 'pending' THEN d.next_attempt_at END, d.last_attempt_at, d.last_status, d.last_error,
	d.delivered_at, d.created_at`

func scanDelivery(row pgx.CollectableRow) (Delivery, error) {
	var d Delivery
	err := row.Scan(&d.ID, &d.SubscriptionID, &d.ChangeID, &d.ChangeType, &d.State, &d.Attempts, &d.NextAttemptAt,
		&d.LastAttemptAt, &d.LastStatus, &d.LastError, &d.DeliveredAt, &d.CreatedAt)
	return d, err
}

// DeliveryFilter selects a subscription's deliveries, newest first.
type DeliveryFilter struct {
	State  DeliveryState // empty for every state
	Cursor string
	Limit  int
}

// ListDeliveries returns one page of a subscription's deliveries and the
// cursor of the next ("" for the last).
func (db *DB) ListDeliveries(ctx context.Context, subscriptionID int64, f DeliveryFilter) ([]Delivery, string, error) {
	limit := clampLimit(f.Limit)
	before := int64(-1)
	if f.Cursor != "" {
		_, id, err := decodeTimeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		before = id
	}
	var out []Delivery
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries d LEFT JOIN LATERAL (`+changeTypeByIDSQL("d.change_id")+`) c ON true
			WHERE d.subscription_id = $1 AND ($2 = '' OR d.state = $2) AND ($3 < 0 OR d.id < $3)
			ORDER BY d.id DESC LIMIT $4`, subscriptionID, string(f.State), before, limit+1)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanDelivery)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = encodeTimeCursor(time.Unix(0, 0), out[limit-1].ID)
	}
	return out, next, nil
}

// GetDelivery returns one delivery of a subscription; ErrNotFound if it
// has none with that id.
func (db *DB) GetDelivery(ctx context.Context, subscriptionID, id int64) (Delivery, error) {
	var d Delivery
	err := db.transact(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries d LEFT JOIN LATERAL (`+changeTypeByIDSQL("d.change_id")+`) c ON true
			WHERE d.subscription_id = $1 AND d.id = $2`, subscriptionID, id)
		if err != nil {
			return err
		}
		d, err = pgx.CollectExactlyOneRow(rows, scanDelivery)
		return err
	})
	return d, err
}

// ReplayDelivery sends a delivery again, whatever its state: it becomes
// pending, due now, with a fresh count of attempts. ErrNotFound if the
// subscription has no such delivery; ErrChangeGone when its change is no
// longer kept.
func (db *DB) ReplayDelivery(ctx context.Context, subscriptionID, id int64) (Delivery, error) {
	var d Delivery
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var kept bool
		err := tx.QueryRow(ctx, `
			UPDATE deliveries d SET state = 'pending', attempts = 0, next_attempt_at = $3
			WHERE d.subscription_id = $1 AND d.id = $2
			RETURNING EXISTS (`+changeTypeByIDSQL("d.change_id")+`)`, subscriptionID, id, db.now()).Scan(&kept)
		if err != nil {
			return err
		}
		if !kept {
			return ErrChangeGone
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify('`+channelDeliveries+`', '')`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+deliveryColumns+` FROM deliveries d LEFT JOIN LATERAL (`+changeTypeByIDSQL("d.change_id")+`) c ON true
			WHERE d.id = $1`, id)
		if err != nil {
			return err
		}
		d, err = pgx.CollectExactlyOneRow(rows, scanDelivery)
		return err
	})
	return d, err
}

// DeliveryJob is a claimed delivery: what to send where.
type DeliveryJob struct {
	ID             int64
	SubscriptionID int64
	// Attempt is this attempt's number, from 1.
	Attempt int
	URL     string
	Secret  string
	// Change is what to send; nil when the retention deleted it.
	Change *Change
}

// ClaimDeliveries claims up to limit pending deliveries that are due, of
// enabled subscriptions, oldest due first, skipping rows another
// deliverer holds. Each claimed delivery counts an attempt and is not due
// again until lease has passed: a deliverer that dies mid-attempt leaves
// it to be claimed again then.
func (db *DB) ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]DeliveryJob, error) {
	var jobs []DeliveryJob
	now := db.now()
	err := db.transact(ctx, func(tx pgx.Tx) error {
		jobs = jobs[:0]
		rows, err := tx.Query(ctx, `
			WITH due AS (
				SELECT d.id FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id AND s.enabled
				WHERE d.state = 'pending' AND d.next_attempt_at <= $1
				ORDER BY d.next_attempt_at LIMIT $2
				FOR UPDATE OF d SKIP LOCKED
			), claimed AS (
				UPDATE deliveries d SET attempts = d.attempts + 1, next_attempt_at = $1 + $3::interval, last_attempt_at = $1
				FROM due WHERE d.id = due.id
				RETURNING d.id, d.subscription_id, d.change_id, d.attempts
			)
			SELECT cl.id, cl.subscription_id, cl.attempts, s.url, s.secret, ch.id IS NOT NULL,
				coalesce(ch.id, 0), coalesce(ch.xid, 0), coalesce(ch.type, ''), coalesce(ch.address, ''), coalesce(ch.scope, ''),
				coalesce(ch.reason, ''), coalesce(ch.class, ''), coalesce(ch.status, ''), coalesce(ch.reply_code, ''),
				coalesce(ch.source, ''), coalesce(ch.provider, ''), ch.event_id, coalesce(ch.actor, ''), coalesce(ch.note, ''),
				ch.expires_at, coalesce(ch.occurred_at, 'epoch'), coalesce(ch.created_at, 'epoch')
			FROM claimed cl JOIN subscriptions s ON s.id = cl.subscription_id
				LEFT JOIN LATERAL (`+changeByIDSQL("cl.change_id")+`) ch ON true
			ORDER BY cl.id`, now, limit, lease)
		if err != nil {
			return err
		}
		var j DeliveryJob
		var kept bool
		var c Change
		_, err = pgx.ForEachRow(rows, append([]any{&j.ID, &j.SubscriptionID, &j.Attempt, &j.URL, &j.Secret, &kept},
			changeDest(&c)...), func() error {
			j.Change = nil
			if kept {
				cc := c
				cc.pos.id = cc.ID
				j.Change = &cc
			}
			jobs = append(jobs, j)
			return nil
		})
		return err
	})
	return jobs, err
}

// DeliveryOutcome is how an attempt went.
type DeliveryOutcome struct {
	// Status is the receiver's HTTP status; 0 when it gave none.
	Status int
	// Error says what went wrong ("" on success).
	Error string
	// State is the delivery's state after the attempt; NextAttemptAt is
	// when a pending one is tried again.
	State         DeliveryState
	NextAttemptAt time.Time
	// Disable turns the subscription off, saying why (the receiver
	// answered 410 Gone).
	Disable string
}

// SettleDelivery records how attempt of job went, on the delivery and its
// subscription. An attempt settled after the delivery was claimed again
// (its lease ran out) changes nothing.
func (db *DB) SettleDelivery(ctx context.Context, job DeliveryJob, o DeliveryOutcome) error {
	now := db.now()
	var status *int
	if o.Status != 0 {
		status = &o.Status
	}
	return db.transact(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			WITH d AS (
				UPDATE deliveries SET state = $3, next_attempt_at = $4, last_status = $5, last_error = $6,
					delivered_at = CASE WHEN $3 = 'delivered' THEN $7::timestamptz END
				WHERE id = $1 AND attempts = $2
				RETURNING subscription_id
			)
			UPDATE subscriptions SET last_attempt_at = $7, last_status = $5, last_error = $6,
				last_success_at = CASE WHEN $3 = 'delivered' THEN $7::timestamptz ELSE last_success_at END,
				enabled = enabled AND $8 = '', disabled_reason = CASE WHEN $8 = '' THEN disabled_reason ELSE $8 END
			WHERE id = (SELECT subscription_id FROM d)`,
			job.ID, job.Attempt, string(o.State), o.NextAttemptAt, status, clip(o.Error, 1000), now, o.Disable)
		return err
	})
}

// DeliveryCounts counts deliveries pending and dead, for metrics.
func (db *DB) DeliveryCounts(ctx context.Context) (pending, dead int64, err error) {
	err = db.read(ctx, func(q *pgxpool.Pool) error {
		return q.QueryRow(ctx, `SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'),
			(SELECT count(*) FROM deliveries WHERE state = 'dead')`).Scan(&pending, &dead)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: count deliveries: %w", err)
	}
	return pending, dead, nil
}

// CountDeliveries counts a subscription's deliveries in state (every
// state when empty).
func (db *DB) CountDeliveries(ctx context.Context, subscriptionID int64, state DeliveryState) (int64, error) {
	var n int64
	err := db.read(ctx, func(q *pgxpool.Pool) error {
		return q.QueryRow(ctx, `SELECT count(*) FROM deliveries WHERE subscription_id = $1 AND ($2 = '' OR state = $2)`,
			subscriptionID, string(state)).Scan(&n)
	})
	return n, err
}
