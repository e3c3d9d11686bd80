package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bounced/bounced/internal/parse"
)

// This file is the one write path of inputs: Record and RecordBatch (and
// so the GroupCommitter) store raw inputs, their events, the recipients'
// state and the suppression list with one set of statements, one per
// table, whatever the batch's size (a single input is a batch of one).
// plan.go decides what to write; here are the statements and their round
// trips: one to allocate ids, then one per layer of events (plan.go), the
// last of which commits.

// ErrInvalidInput means an input cannot be stored as given; the error
// names what is wrong.
var ErrInvalidInput = errors.New("store: invalid input")

// BatchResult is what RecordBatch did with one input.
type BatchResult struct {
	Outcome Outcome
	Err     error
}

// Record stores a raw input and, in the same transaction, its events, the
// recipients' state and the suppression list. Identical bytes stored
// before make it a no-op that returns the earlier message.
func (db *DB) Record(ctx context.Context, in Input) (Outcome, error) {
	r := db.RecordBatch(ctx, []Input{in})[0]
	return r.Outcome, r.Err
}

// RecordBatch records many inputs in one transaction, as if Record had
// been called for each in order: identical bytes are stored once, a
// replayed provider event is recorded once. Result i belongs to input i.
//
// Inputs are checked before the transaction starts, so one bad input
// fails alone. Should the database still refuse the batch for a reason
// that is not an outage, each input is retried in a transaction of its
// own, so one input can never fail its batch-mates. When the database is
// unavailable every result carries ErrUnavailable.
func (db *DB) RecordBatch(ctx context.Context, ins []Input) []BatchResult {
	results := make([]BatchResult, len(ins))
	ps := make([]*prepared, 0, len(ins))
	idx := make([]int, 0, len(ins))
	// The batch is received, and its policy applied, at one time.
	received := db.now()
	for i, in := range ins {
		if err := validateInput(in); err != nil {
			results[i].Err = err
			continue
		}
		p, err := prepare(in, received)
		if err != nil {
			results[i].Err = err
			continue
		}
		ps = append(ps, p)
		idx = append(idx, i)
	}
	if len(ps) == 0 {
		return results
	}
	recs, err := db.recordSet(ctx, ps)
	switch {
	case err == nil:
		for j, rec := range recs {
			db.countRecorded(ps[j].in, rec)
			results[idx[j]].Outcome = rec.out
		}
	case len(ps) == 1 || errors.Is(err, ErrUnavailable) || ctx.Err() != nil:
		for _, i := range idx {
			results[i].Err = err
		}
	default:
		db.logger.WarnContext(ctx, "batch refused; recording its inputs one by one", "inputs", len(ps), "error", err)
		for j, i := range idx {
			recs, err := db.recordSet(ctx, ps[j:j+1])
			if err != nil {
				results[i].Err = err
				continue
			}
			db.countRecorded(ps[j].in, recs[0])
			results[i].Outcome = recs[0].out
		}
	}
	return results
}

// validateInput catches what the schema's CHECK constraints would refuse,
// before it can abort a shared transaction.
func validateInput(in Input) error {
	switch in.Status {
	case ParsePending, ParseParsed, ParseFailed:
	default:
		return fmt.Errorf("%w: parse status %q", ErrInvalidInput, in.Status)
	}
	for i, ev := range in.Events {
		if !ev.Type.Valid() {
			return fmt.Errorf("%w: event %d: type %q", ErrInvalidInput, i, ev.Type)
		}
		switch ev.Class {
		case parse.ClassHard, parse.ClassSoft, parse.ClassSender, parse.ClassComplaint, parse.ClassNone:
		default:
			return fmt.Errorf("%w: event %d: class %q", ErrInvalidInput, i, ev.Class)
		}
	}
	return nil
}

// recordSet records ps in one transaction, retried as transact retries.
func (db *DB) recordSet(ctx context.Context, ps []*prepared) ([]recorded, error) {
	var recs []recorded
	err := db.retry(ctx, func() error {
		var err error
		recs, err = db.recordSetOnce(ctx, ps)
		return err
	})
	return recs, err
}

func (db *DB) recordSetOnce(ctx context.Context, ps []*prepared) (_ []recorded, err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	pol, err := db.currentPolicy(ctx, conn)
	if err != nil {
		return nil, err
	}
	plan := planBatch(ps, pol)
	var rawIDs, eventIDs []int64
	if err := conn.QueryRow(ctx, allocateIDsSQL, plan.nRaw, len(plan.events)).Scan(&rawIDs, &eventIDs); err != nil {
		return nil, fmt.Errorf("allocate ids: %w", err)
	}
	plan.assign(rawIDs, eventIDs)
	defer func() {
		if err != nil && !conn.Conn().IsClosed() {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	a, err := sendPlan(ctx, conn, plan)
	if err != nil {
		return nil, err
	}
	recs := plan.results(a)
	if err := readReplays(ctx, conn, ps, recs); err != nil {
		return nil, err
	}
	return recs, nil
}

// sendPlan runs the plan's statements: round trip 1 begins the
// transaction and stores the raw inputs, the events and layer 0's
// recipients; round trip l+1 suppresses layer l's addresses and updates
// layer l+1's recipients (a layer's suppressions depend on the soft counts
// its recipients upserts return); the last also commits.
func sendPlan(ctx context.Context, conn *pgxpool.Conn, plan *batchPlan) (answers, error) {
	a := answers{created: map[int64]bool{}, isNew: map[int64]bool{}, added: map[int64]bool{}}
	softCount := map[int64]int{}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(insertRawSQL, plan.rawArgs()...)
	if len(plan.events) > 0 {
		b.Queue(insertEventsSQL, plan.eventArgs()...)
	}
	suppressing := false
	for l := 0; ; l++ {
		var layer []*plannedEvent
		var windowed, plain []*plannedEvent
		if l < len(plan.layers) {
			layer = plan.layers[l]
			windowed, plain = recipientGroups(layer)
			if len(windowed) > 0 {
				b.Queue(upsertWindowedRecipientsSQL, recipientArgs(windowed, true, plan.pol)...)
			}
			if len(plain) > 0 {
				b.Queue(upsertRecipientsSQL, recipientArgs(plain, false, plan.pol)...)
			}
		}
		last := l >= len(plan.layers)
		if last {
			b.Queue("COMMIT")
		}
		br := conn.SendBatch(ctx, b)
		err := readRound(br, l == 0, len(plan.events) > 0, suppressing, len(windowed) > 0, len(plain) > 0, last, a, softCount)
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return a, err
		}
		if last {
			return a, nil
		}
		b = &pgx.Batch{}
		entries := plan.entries(layer, softCount)
		suppressing = len(entries) > 0
		if suppressing {
			b.Queue(suppressSQL, suppressArgs(entries, plan.now)...)
		}
	}
}

// readRound reads one round trip's results in the order they were
// queued: BEGIN, raw inputs and events (the first round), a layer's
// suppressions (later rounds), its recipients, and COMMIT (the last).
func readRound(br pgx.BatchResults, first, events, suppressing, windowed, plain, last bool, a answers, softCount map[int64]int) error {
	if first {
		if _, err := br.Exec(); err != nil {
			return err
		}
		if err := collectIDs(br, a.created, "insert raw"); err != nil {
			return err
		}
		if events {
			if err := collectIDs(br, a.isNew, "insert events"); err != nil {
				return err
			}
		}
	}
	if suppressing {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("suppress: %w", err)
		}
		var id int64
		var added bool
		if _, err := pgx.ForEachRow(rows, []any{&id, &added}, func() error {
			if added {
				a.added[id] = true
			}
			return nil
		}); err != nil {
			return fmt.Errorf("suppress: %w", err)
		}
	}
	for _, queued := range []bool{windowed, plain} {
		if !queued {
			continue
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("update recipients: %w", err)
		}
		var id int64
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { softCount[id] = n; return nil }); err != nil {
			return fmt.Errorf("update recipients: %w", err)
		}
	}
	if last {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	return nil
}

// collectIDs reads a batch result of single id rows into set.
func collectIDs(br pgx.BatchResults, set map[int64]bool, what string) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { set[id] = true; return nil }); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// readReplays gives each input whose bytes were stored before (by an
// earlier transaction or earlier in this batch) the stored message, with
// the event ids recorded from those bytes.
func readReplays(ctx context.Context, conn *pgxpool.Conn, ps []*prepared, recs []recorded) error {
	var stored [][]byte
	for i, p := range ps {
		if !recs[i].out.Created {
			stored = append(stored, p.sum[:])
		}
	}
	if len(stored) == 0 {
		return nil
	}
	rows, err := conn.Query(ctx, `SELECT `+messageColumns+` FROM raw_messages WHERE sha256 = ANY($1)`, stored)
	if err != nil {
		return err
	}
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return err
	}
	bySum := map[string]Message{}
	for _, m := range msgs {
		bySum[m.SHA256] = m
	}
	for i, p := range ps {
		if recs[i].out.Created {
			continue
		}
		m, ok := bySum[fmt.Sprintf("%x", p.sum)]
		if !ok {
			return fmt.Errorf("raw message %x vanished", p.sum)
		}
		recs[i].out.Message = m
	}
	return nil
}

// The statements of the write path, one per table. Their arguments come
// from plan.go (rawArgs, eventArgs, recipientArgs, suppressArgs).
const (
	// allocateIDsSQL takes the batch's ids from the sequences, looking
	// each sequence up once per statement (an InitPlan), not once per id.
	allocateIDsSQL = `SELECT
		ARRAY(SELECT nextval((SELECT pg_get_serial_sequence('raw_messages', 'id'))::regclass) FROM generate_series(1, $1)),
		ARRAY(SELECT nextval((SELECT pg_get_serial_sequence('events', 'id'))::regclass) FROM generate_series(1, $2))`

	// insertRawSQL stores the bytes of every input that is the first with
	// its bytes, under its pre-allocated id; bytes stored before are
	// skipped, and their id is then never used.
	insertRawSQL = `
		INSERT INTO raw_messages (id, sha256, source, provider, content_type, body, received_at,
			parse_status, parse_error, kind, result)
		OVERRIDING SYSTEM VALUE
		SELECT id, s, src, prov, ct, b, rcv, st, perr, k, res::jsonb
		FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::timestamptz[],
			$8::text[], $9::text[], $10::text[], $11::text[]) AS t(id, s, src, prov, ct, b, rcv, st, perr, k, res)
		ORDER BY id
		ON CONFLICT (sha256) DO NOTHING
		RETURNING id`

	// insertEventsSQL inserts the events of newly stored inputs, in batch
	// order. A provider event id already in event_keys (or twice in the
	// batch: the first wins) is a replay and its event is skipped.
	insertEventsSQL = `
		WITH t AS (
			SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
				$15::text[], $16::text[], $17::text[], $18::text[], $19::timestamptz[])
				AS t(id, raw_id, address, address_key, domain, type, class, reason, status, reply_code,
					diagnostic, reporting_mta, remote_mta, original_message_id, source, provider,
					provider_event_id, scope, occurred_at)
			WHERE EXISTS (SELECT 1 FROM raw_messages r WHERE r.id = t.raw_id)
		), keyed AS (
			INSERT INTO event_keys (source, provider, provider_event_id, event_id)
			SELECT source, provider, provider_event_id, id FROM t WHERE provider_event_id IS NOT NULL
			ORDER BY id
			ON CONFLICT DO NOTHING
			RETURNING event_id
		)
		INSERT INTO events (id, raw_id, address, address_key, domain, type, class, reason, status, reply_code,
			diagnostic, reporting_mta, remote_mta, original_message_id, source, provider, provider_event_id,
			scope, actor, note, occurred_at)
		OVERRIDING SYSTEM VALUE
		SELECT t.id, t.raw_id, address, address_key, domain, type, class, reason, status, reply_code,
			diagnostic, reporting_mta, remote_mta, original_message_id, source, provider, provider_event_id,
			scope, '', '', occurred_at
		FROM t
		WHERE t.provider_event_id IS NULL OR t.id IN (SELECT event_id FROM keyed)
		ORDER BY t.id
		RETURNING id`

	// upsertWindowedRecipientsSQL applies a layer's deliveries and
	// counted failures to their recipients and the soft window: a delivery
	// deletes the counted failures up to its time, a counted failure is
	// kept at most once per UTC day and per original message, and the
	// window is counted from what remains. An event is applied only if it
	// was inserted (not a replay): the join probes the events' primary key
	// (id, created_at) with created_at = now(), which every event of this
	// transaction has (one partition, one index lookup per event, whatever
	// the planner's statistics say: hence LATERAL ... LIMIT 1). It returns
	// each event with the failures counted in its window.
	upsertWindowedRecipientsSQL = `
		WITH t AS (
			SELECT u.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[],
				$7::int[], $8::bigint[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[],
				$13::bool[], $14::bool[], $15::date[], $16::text[], $17::text[])
				AS u(tenant, k, addr, dom, hard, complaint, sender, id, ty, at, lb, ld, delivery, counts, day, mkey, reason)
			CROSS JOIN LATERAL (SELECT FROM events e WHERE e.id = u.id AND e.created_at = now() LIMIT 1) e
		), cleared AS (
			DELETE FROM soft_failures sf USING t
			WHERE t.delivery AND sf.tenant = t.tenant AND sf.address_key = t.k AND sf.occurred_at <= t.at
		), counted AS (
			INSERT INTO soft_failures (tenant, address_key, day, message_key, event_id, reason, occurred_at)
			SELECT tenant, k, day, mkey, id, reason, at FROM t WHERE counts
			ON CONFLICT DO NOTHING
			RETURNING tenant, address_key, occurred_at
		), win AS (
			SELECT t.tenant, t.k, count(sf.occurred_at) AS n, min(sf.occurred_at) AS first
			FROM t LEFT JOIN soft_failures sf ON sf.tenant = t.tenant AND sf.address_key = t.k
				AND CASE WHEN t.counts THEN sf.occurred_at > t.at - $18::interval AND sf.occurred_at <= t.at
					ELSE sf.occurred_at > t.at END
			GROUP BY t.tenant, t.k
		), cnt AS (
			SELECT tenant, address_key, count(*) AS n, min(occurred_at) AS first FROM counted GROUP BY tenant, address_key
		), up AS (
			INSERT INTO recipients AS r (tenant, address_key, address, domain, soft_count, soft_first_at, hard_count,
				complaint_count, sender_error_count, last_event_id, last_event_type, last_event_at,
				last_bounce_at, last_delivery_at, updated_at)
			SELECT t.tenant, t.k, t.addr, t.dom, win.n + coalesce(cnt.n, 0), least(win.first, cnt.first),
				t.hard, t.complaint, t.sender, t.id, t.ty, t.at, t.lb, t.ld, now()
			FROM t JOIN win ON win.tenant = t.tenant AND win.k = t.k
				LEFT JOIN cnt ON cnt.tenant = t.tenant AND cnt.address_key = t.k
			ORDER BY t.tenant, t.k
			ON CONFLICT (tenant, address_key) DO UPDATE SET
				address = EXCLUDED.address,
				soft_count = EXCLUDED.soft_count,
				soft_first_at = EXCLUDED.soft_first_at,
				` + recipientCountersSQL + `
			RETURNING tenant, address_key, soft_count
		)
		SELECT t.id, up.soft_count FROM up JOIN t ON t.tenant = up.tenant AND t.k = up.address_key`

	// upsertRecipientsSQL applies a layer's other events (outside the soft
	// window) to their recipients' counters, soft count kept, and returns
	// each event with its recipient's soft count.
	upsertRecipientsSQL = `
		WITH t AS (
			SELECT u.* FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[],
				$7::int[], $8::bigint[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
				AS u(tenant, k, addr, dom, hard, complaint, sender, id, ty, at, lb, ld)
			CROSS JOIN LATERAL (SELECT FROM events e WHERE e.id = u.id AND e.created_at = now() LIMIT 1) e
		), up AS (
			INSERT INTO recipients AS r (tenant, address_key, address, domain, soft_count, soft_first_at, hard_count,
				complaint_count, sender_error_count, last_event_id, last_event_type, last_event_at,
				last_bounce_at, last_delivery_at, updated_at)
			SELECT t.tenant, t.k, t.addr, t.dom, 0, NULL, t.hard, t.complaint, t.sender, t.id, t.ty, t.at, t.lb, t.ld, now()
			FROM t
			ORDER BY t.tenant, t.k
			ON CONFLICT (tenant, address_key) DO UPDATE SET
				address = EXCLUDED.address,
				soft_count = r.soft_count,
				soft_first_at = r.soft_first_at,
				` + recipientCountersSQL + `
			RETURNING tenant, address_key, soft_count
		)
		SELECT t.id, up.soft_count FROM up JOIN t ON t.tenant = up.tenant AND t.k = up.address_key`
)

// suppressSQL puts a layer's entries on their lists, or refreshes the
// entries there (suppressOnConflictSQL), and returns each entry's event and
// whether it newly suppressed its address (inserted, or brought back from
// an expired entry). A change that alters what a check answers notifies
// the other replicas' caches.
var suppressSQL = `
		WITH up AS (
			INSERT INTO suppressions AS s (scope, address, address_key, domain, reason, class, status, reply_code,
				diagnostic, source, provider, first_event_id, last_event_id, state_event_id, first_seen_at,
				last_seen_at, expires_at, created_by, note, created_at)
			SELECT sc, a, k, d, re, cl, st, rc, dg, src, prov, id, id, id, at, at, exp, cb, nt, $17
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::timestamptz[],
				$14::timestamptz[], $15::text[], $16::text[])
				AS u(sc, a, k, d, re, cl, st, rc, dg, src, prov, id, at, exp, cb, nt)
			ORDER BY sc, k
			` + suppressOnConflictSQL + `
			RETURNING address_key, last_event_id,
				coalesce(first_event_id = last_event_id, false) AS added,
				coalesce(state_event_id = last_event_id, false) AS changed
		)
		SELECT last_event_id, added FROM up,
			LATERAL (SELECT CASE WHEN up.changed THEN pg_notify('` + channelSuppressions + `', up.address_key) END) n`
