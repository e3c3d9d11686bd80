package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// recordSet records ps in one transaction, retried as transact retries,
// and also when a unique index refused a row: another transaction stored
// the same bytes, provider event or new recipient at the same moment, and
// the next attempt finds it there.
func (db *DB) recordSet(ctx context.Context, ps []*prepared, also ...statement) ([]recorded, error) {
	var recs []recorded
	err := db.retry(ctx, func() error {
		var err error
		recs, err = db.recordSetOnce(ctx, ps, also)
		if uniqueViolation(err) {
			return raceError{err}
		}
		return err
	})
	return recs, err
}

// raceError is a unique violation met by the write path, retried.
type raceError struct{ err error }

func (e raceError) Error() string { return e.err.Error() }
func (e raceError) Unwrap() error { return e.err }

func uniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// statement is one more statement of a write's transaction (see
// QuarantineMail), run after the inputs are recorded.
type statement struct {
	sql  string
	args []any
}

func (db *DB) recordSetOnce(ctx context.Context, ps []*prepared, also []statement) (_ []recorded, err error) {
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
	a, err := sendPlan(ctx, conn, plan, also)
	if err != nil {
		return nil, err
	}
	recs := plan.results(a)
	if err := readReplays(ctx, conn, ps, recs); err != nil {
		return nil, err
	}
	return recs, nil
}

// sendPlan runs the plan's statements in round trips: the first begins
// the transaction and stores the raw inputs and their events, and says
// which were new (bytes stored before and replayed provider events are
// not); then one round per layer updates the layer's recipients (only for
// events that were inserted) and puts on the lists the addresses the
// layer before suppresses (a layer's suppressions depend on the soft
// counts its recipients statements return); the last also commits.
func sendPlan(ctx context.Context, conn *pgxpool.Conn, plan *batchPlan, also []statement) (answers, error) {
	a := answers{created: map[int64]bool{}, isNew: map[int64]bool{}, added: map[int64]bool{}}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	// Every statement of the batch reaches existing rows by their keys:
	// an index probe per row, whatever the planner's statistics say of
	// the tables (a fresh table has none, and then looks small enough to
	// scan whole, row after row of the batch).
	b.Queue("SET LOCAL enable_seqscan = off")
	// The subscriptions a change is delivered to are read whole (a few
	// rows, no index): at the cost of a disabled scan, which must not
	// make the planner compile the statement (JIT takes a second).
	b.Queue("SET LOCAL jit = off")
	b.Queue(insertInputsSQL, plan.inputArgs()...)
	if err := sendRound(ctx, conn, b, func(br pgx.BatchResults) error {
		for range 3 { // BEGIN, SET LOCAL ×2
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("insert inputs: %w", err)
		}
		var event bool
		var id int64
		_, err = pgx.ForEachRow(rows, []any{&event, &id}, func() error {
			if event {
				a.isNew[id] = true
			} else {
				a.created[id] = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("insert inputs: %w", err)
		}
		return nil
	}); err != nil {
		return a, err
	}
	softCount := map[int64]int{}
	var entries []entry
	var layer []*plannedEvent
	for l := 0; l <= len(plan.layers); l++ {
		b = &pgx.Batch{}
		// The last layer's entries are put on their lists, and its
		// bounces and complaints recorded as changes with them.
		reported, nReported := reportedArgs(layer)
		suppressing := len(entries) > 0 || nReported > 0
		if suppressing {
			b.Queue(suppressSQL, append(suppressArgs(entries, plan.now), reported...)...)
		}
		var windowed, plain []*plannedEvent
		layer = nil
		if l < len(plan.layers) {
			for _, pe := range plan.layers[l] {
				if a.isNew[pe.id] {
					layer = append(layer, pe)
				}
			}
			windowed, plain = recipientGroups(layer)
			if len(windowed) > 0 {
				b.Queue(windowedRecipientsSQL, recipientArgs(windowed, true, plan.pol)...)
			}
			if len(plain) > 0 {
				b.Queue(plainRecipientsSQL, recipientArgs(plain, false, plan.pol)...)
			}
		}
		last := l == len(plan.layers)
		if last {
			for _, st := range also {
				b.Queue(st.sql, st.args...)
			}
			b.Queue("COMMIT")
		}
		if b.Len() == 0 {
			continue
		}
		extra := 0
		if last {
			extra = len(also)
		}
		if err := sendRound(ctx, conn, b, func(br pgx.BatchResults) error {
			return readRound(br, suppressing, len(windowed) > 0, len(plain) > 0, extra, last, a, softCount)
		}); err != nil {
			return a, err
		}
		entries = plan.entries(layer, softCount)
	}
	return a, nil
}

// sendRound sends b and reads its results with read.
func sendRound(ctx context.Context, conn *pgxpool.Conn, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	br := conn.SendBatch(ctx, b)
	err := read(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// readRound reads a layer's round in the order it was queued: the last
// layer's suppressions, this layer's recipients, and in the last round the
// extra statements and COMMIT.
func readRound(br pgx.BatchResults, suppressing, windowed, plain bool, extra int, last bool, a answers, softCount map[int64]int) error {
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
	for range extra {
		if _, err := br.Exec(); err != nil {
			return err
		}
	}
	if last {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
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
// from plan.go (inputArgs, recipientArgs, suppressArgs). None inserts with
// ON CONFLICT, whose speculative insertion costs a second WAL record per
// row: each inserts where no row exists yet, and two transactions
// inserting the same key at once meet on a unique index, which fails one
// of them, and recordSet runs it again.
const (
	// allocateIDsSQL takes the batch's ids from the sequences, looking
	// each sequence up once per statement (an InitPlan), not once per id:
	// a nextval gives a block of 64 ids (the sequences count up by 64,
	// migration 00030), in increasing order.
	allocateIDsSQL = `SELECT
		ARRAY(SELECT b + i FROM (SELECT nextval((SELECT pg_get_serial_sequence('raw_messages', 'id'))::regclass) AS b
			FROM generate_series(1, ($1 + 63) / 64)) blocks, generate_series(0, 63) i ORDER BY 1 LIMIT $1),
		ARRAY(SELECT b + i FROM (SELECT nextval((SELECT pg_get_serial_sequence('events', 'id'))::regclass) AS b
			FROM generate_series(1, ($2 + 63) / 64)) blocks, generate_series(0, 63) i ORDER BY 1 LIMIT $2)`

	// windowedRecipientsSQL applies a layer's deliveries and counted
	// failures to their recipients r and the soft window: a delivery
	// deletes the counted failures up to its time, a counted failure is
	// kept at most once per UTC day and per original message, and the
	// window is counted from what remains. A delivery to an address with
	// no state writes nothing: there is nothing to clear, and no counter
	// a delivery adds to. It returns each event applied with the failures
	// counted in its window. An address without a recipient row has no
	// soft failures either (they are only written with one, and never
	// deleted without theirs), so its are not looked up.
	windowedRecipientsSQL = `
		WITH t AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[],
				$6::int[], $7::bigint[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[],
				$12::bool[], $13::bool[], $14::date[], $15::text[], $16::text[])
				AS u(tenant, k, addr, hard, complaint, sender, id, ty, at, lb, ld, delivery, counts, day, mkey, reason)
		), cur AS (
			SELECT r.tenant, r.address_key FROM recipients r JOIN t ON r.tenant = t.tenant AND r.address_key = t.k
		), live AS (
			SELECT * FROM (SELECT t.*, EXISTS (SELECT 1 FROM cur WHERE cur.tenant = t.tenant AND cur.address_key = t.k) AS known
				FROM t) t
			WHERE NOT t.delivery OR t.known
		), cleared AS (
			DELETE FROM soft_failures sf USING live t
			WHERE t.delivery AND sf.tenant = t.tenant AND sf.address_key = t.k AND sf.occurred_at <= t.at
		), counted AS (
			INSERT INTO soft_failures (tenant, address_key, day, message_key, event_id, reason, occurred_at)
			SELECT tenant, k, day, mkey, id, reason, at FROM live t
			WHERE counts AND NOT (t.known AND EXISTS (SELECT 1 FROM soft_failures sf WHERE sf.tenant = t.tenant
				AND sf.address_key = t.k AND (sf.day = t.day OR t.mkey <> '' AND sf.message_key = t.mkey)))
			RETURNING tenant, address_key, occurred_at
		), win AS (
			-- A layer holds an address once, so one row per address.
			SELECT t.tenant, t.k, w.n, w.first FROM live t, LATERAL (
				SELECT count(sf.occurred_at) AS n, min(sf.occurred_at) AS first FROM soft_failures sf
				WHERE t.known AND sf.tenant = t.tenant AND sf.address_key = t.k
					AND CASE WHEN t.counts THEN sf.occurred_at > t.at - $17::interval AND sf.occurred_at <= t.at
						ELSE sf.occurred_at > t.at END) w
		), cnt AS (
			SELECT tenant, address_key, count(*) AS n, min(occurred_at) AS first FROM counted GROUP BY tenant, address_key
		), n AS (
			SELECT t.id, t.tenant, t.k AS address_key, t.addr AS address,
				win.n + coalesce(cnt.n, 0) AS soft_count, least(win.first, cnt.first) AS soft_first_at,
				t.hard AS hard_count, t.complaint AS complaint_count, t.sender AS sender_error_count,
				t.id AS last_event_id, t.ty AS last_event_type, t.at AS last_event_at, t.lb AS last_bounce_at,
				t.ld AS last_delivery_at, t.known
			FROM live t JOIN win ON win.tenant = t.tenant AND win.k = t.k
				LEFT JOIN cnt ON cnt.tenant = t.tenant AND cnt.address_key = t.k
		), upd AS (
			UPDATE recipients r SET address = n.address, soft_count = n.soft_count, soft_first_at = n.soft_first_at,
				` + recipientCountersSQL + `
			FROM n WHERE n.known AND r.tenant = n.tenant AND r.address_key = n.address_key
			RETURNING r.tenant, r.address_key, r.soft_count
		), ins AS (
			` + insertRecipientsSQL + `
		)
		SELECT n.id, x.soft_count FROM (SELECT * FROM upd UNION ALL SELECT * FROM ins) x
			JOIN n ON n.tenant = x.tenant AND n.address_key = x.address_key`

	// plainRecipientsSQL applies a layer's other events (outside the
	// soft window) to their recipients' counters, soft count kept, and
	// returns each event with its recipient's soft count.
	plainRecipientsSQL = `
		WITH n AS (
			SELECT id, tenant, k AS address_key, addr AS address, 0 AS soft_count,
				NULL::timestamptz AS soft_first_at, hard AS hard_count, complaint AS complaint_count,
				sender AS sender_error_count, id AS last_event_id, ty AS last_event_type, at AS last_event_at,
				lb AS last_bounce_at, ld AS last_delivery_at,
				EXISTS (SELECT 1 FROM recipients r WHERE r.tenant = u.tenant AND r.address_key = u.k) AS known
			FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[],
				$6::int[], $7::bigint[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[])
				AS u(tenant, k, addr, hard, complaint, sender, id, ty, at, lb, ld)
		), upd AS (
			UPDATE recipients r SET address = n.address,
				` + recipientCountersSQL + `
			FROM n WHERE n.known AND r.tenant = n.tenant AND r.address_key = n.address_key
			RETURNING r.tenant, r.address_key, r.soft_count
		), ins AS (
			` + insertRecipientsSQL + `
		)
		SELECT n.id, x.soft_count FROM (SELECT * FROM upd UNION ALL SELECT * FROM ins) x
			JOIN n ON n.tenant = x.tenant AND n.address_key = x.address_key`

	// insertRecipientsSQL inserts the recipients of n that were not
	// there when the statement began (known is false): each existing
	// row is probed once, to know it, and updated by upd.
	insertRecipientsSQL = `INSERT INTO recipients (tenant, address_key, address, soft_count, soft_first_at, hard_count,
				complaint_count, sender_error_count, last_event_id, last_event_type, last_event_at,
				last_bounce_at, last_delivery_at, updated_at)
			SELECT tenant, address_key, address, soft_count, soft_first_at, hard_count, complaint_count,
				sender_error_count, last_event_id, last_event_type, last_event_at, last_bounce_at, last_delivery_at, now()
			FROM n WHERE NOT n.known
			ORDER BY tenant, address_key
			RETURNING tenant, address_key, soft_count`
)

// insertInputsSQL stores the bytes of every input that is the first
// with its bytes, under its pre-allocated id (bytes stored before are
// skipped, and their id is never used), and the events of the inputs
// it stored, in batch order, but those whose provider event id this
// month's or last month's events hold already (a replay; ids twice in
// the batch are left out by planBatch). Provider ids are unique in each
// monthly partition of events (migration 00012), and the lookup reads
// the partitions of events created from the start of last month (UTC,
// the database's clock) until now: a provider event sent again more
// than a month later is recorded again. Each bounce and complaint
// recorded is a change, written with the suppressions of its layer
// (suppressSQL). It returns the ids of the raw inputs (false) and events
// (true) it inserted.
var insertInputsSQL = `
	WITH raw AS (
		INSERT INTO raw_messages (id, sha256, source, provider, content_type, body, received_at,
			parse_status, parse_error, kind, result, deflated_size, deflate_dict, result_deflated)
		OVERRIDING SYSTEM VALUE
		SELECT id, s, src, prov, ct, b, rcv, st, perr, k, res::jsonb, size,
			CASE WHEN size IS NOT NULL THEN ` + bodyDictSQL + ` END, rz
		FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::timestamptz[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::int[], $13::bytea[])
			AS t(id, s, src, prov, ct, b, rcv, st, perr, k, res, size, rz)
		WHERE NOT EXISTS (SELECT 1 FROM raw_messages r WHERE r.sha256 = t.s)
		ORDER BY id
		RETURNING id
	), ev AS (
		INSERT INTO events (id, raw_id, address, address_key, type, class, reason, status, reply_code,
			diagnostic, reporting_mta, remote_mta, original_message_id, source, provider, provider_event_id,
			scope, actor, note, occurred_at, evidence, unverified)
		OVERRIDING SYSTEM VALUE
		SELECT t.id, t.raw_id, NULLIF(address, address_key), address_key, type, class, reason, status, reply_code,
			diagnostic, reporting_mta, remote_mta, original_message_id, source, provider, provider_event_id,
			scope, '', '', occurred_at, evidence::jsonb, unverified
		FROM unnest($14::bigint[], $15::bigint[], $16::text[], $17::text[], $18::text[], $19::text[],
			$20::text[], $21::text[], $22::text[], $23::text[], $24::text[], $25::text[], $26::text[],
			$27::text[], $28::text[], $29::text[], $30::text[], $31::timestamptz[], $32::text[], $33::boolean[])
			AS t(id, raw_id, address, address_key, type, class, reason, status, reply_code,
				diagnostic, reporting_mta, remote_mta, original_message_id, source, provider,
				provider_event_id, scope, occurred_at, evidence, unverified)
		WHERE t.raw_id IN (SELECT id FROM raw)
			AND (t.provider_event_id IS NULL OR NOT EXISTS (SELECT 1 FROM events e
				WHERE e.source = t.source AND e.provider = t.provider AND e.provider_event_id = t.provider_event_id
					AND e.created_at >= date_trunc('month', now() - interval '1 month', 'UTC')
					AND e.created_at < now() + interval '1 day'))
		ORDER BY t.id
		RETURNING id
	)
	SELECT false, id FROM raw UNION ALL SELECT true, id FROM ev`

// suppressSQL puts a layer's entries on their lists, or merges them into
// the entries there (suppressMergeSQL), and returns each entry's event
// and whether it newly suppressed its address (inserted, or brought back
// from an expired entry). It records the layer's changes (changesSQL):
// each bounce and complaint event of the layer ($18–$21, reportedArgs),
// which reads its fields from the event (changeEventJoin), and each
// address newly suppressed; a bounce or complaint that newly suppressed
// its address on its own scope, at its time, is one row for both
// (adds_suppression, migration 00032). A change that alters what a check
// answers notifies the other replicas' caches.
var suppressSQL = `
		WITH n AS (
			SELECT sc AS scope, a AS address, k AS address_key, d AS domain, re AS reason, cl AS class, st AS status,
				rc AS reply_code, dg AS diagnostic, src AS source, prov AS provider, id AS first_event_id,
				id AS last_event_id, id AS state_event_id, at AS first_seen_at, at AS last_seen_at, exp AS expires_at,
				cb AS created_by, nt AS note, $17::timestamptz AS created_at,
				EXISTS (SELECT 1 FROM suppressions s WHERE ` + keyIs("u.k") + ` AND s.scope = u.sc) AS known
			FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
				$8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[], $13::timestamptz[],
				$14::timestamptz[], $15::text[], $16::text[])
				AS u(sc, a, k, d, re, cl, st, rc, dg, src, prov, id, at, exp, cb, nt)
		), upd AS (
			UPDATE suppressions s SET ` + suppressMergeSQL + `
			FROM n WHERE n.known AND ` + keyIs("n.address_key") + ` AND s.scope = n.scope
			RETURNING s.address_key, s.scope, s.last_event_id,
				coalesce(s.first_event_id = s.last_event_id, false) AS added,
				coalesce(s.state_event_id = s.last_event_id, false) AS changed
		), ins AS (
			INSERT INTO suppressions (scope, address, address_key, domain, reason, class, status, reply_code,
				diagnostic, source, provider, first_event_id, last_event_id, state_event_id, first_seen_at,
				last_seen_at, expires_at, created_by, note, created_at)
			SELECT scope, address, address_key, domain, reason, class, status, reply_code, diagnostic, source, provider,
				first_event_id, last_event_id, state_event_id, first_seen_at, last_seen_at, expires_at, created_by,
				note, created_at
			FROM n WHERE NOT n.known
			ORDER BY address_key, scope
			RETURNING address_key, scope, last_event_id, true AS added, true AS changed
		), done AS (
			SELECT * FROM upd UNION ALL SELECT * FROM ins
		), addition AS (
			SELECT n.scope, n.reason, n.class, n.last_event_id AS event_id, n.created_by AS actor, n.note,
				n.expires_at, n.first_seen_at AS occurred_at,
				CASE WHEN n.created_by = '' AND n.note = '' THEN n.last_event_id END AS merge_id
			FROM done JOIN n ON n.address_key = done.address_key AND n.scope = done.scope
			WHERE done.added
		), reported AS (
			SELECT * FROM unnest($18::bigint[], $19::text[], $20::text[], $21::timestamptz[]) AS r(event_id, type, scope, occurred_at)
		), change AS (
			-- A change's address, status, reply code, source and provider
			-- are its event's: it reads them there (changeColumns).
			SELECT coalesce(r.type, 'suppression_added') AS type, coalesce(r.scope, a.scope) AS scope, '' AS address,
				coalesce(a.reason, '') AS reason, coalesce(a.class, '') AS class, '' AS status, '' AS reply_code,
				'' AS source, '' AS provider, coalesce(r.event_id, a.event_id) AS event_id, coalesce(a.actor, '') AS actor,
				coalesce(a.note, '') AS note, a.expires_at, coalesce(r.occurred_at, a.occurred_at) AS occurred_at,
				r.event_id IS NOT NULL AND a.event_id IS NOT NULL AS adds_suppression
			FROM reported r FULL JOIN addition a ON a.merge_id = r.event_id AND a.scope = r.scope AND a.occurred_at = r.occurred_at
			ORDER BY 10, r.event_id IS NULL
		), ` + changesSQL("change", "$17") + `
		SELECT last_event_id, added FROM done,
			LATERAL (SELECT CASE WHEN done.changed THEN pg_notify('` + channelSuppressions + `', done.address_key) END) x`
