package store

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bounced/bounced/internal/parse"
)

// This file records a whole batch of inputs with a handful of set-based
// statements, pipelined, instead of three or four statements per event
// each waiting for the last, which is what lets one node take tens of
// thousands of webhook events a second.
//
// It must do exactly what recordTx does input after input: the same rows
// with the same values. It mirrors insertEvent, applyToRecipient and
// suppress (event.go, suppression.go) statement for statement, sharing
// their SQL where it does not depend on the event (recipientCountersSQL,
// suppressOnConflictSQL) and their Go decisions (Policy.decide,
// entryFromEvent); change them and this together.
// TestRecordBatchMatchesRecord checks the two paths against each other on
// random histories, and Options.PerEventBatches turns this path off.
//
// Events about different addresses never read each other's rows, so they
// can be applied in one statement. Events are split into layers in which
// every address appears once: an address's first event is in layer 0, its
// second in layer 1 and so on, and layers are applied in order, so each
// address still sees its events one after another, in input order.
//
// Ids of raw inputs and events are taken from their sequences up front,
// so that statements can be queued before earlier ones have answered; a
// later statement learns what an earlier one skipped (bytes stored
// before, an event replayed) by joining on the pre-allocated ids, which
// exist only for rows actually inserted. The transaction is explicit, and
// takes one round trip per layer: a layer's suppressions depend on the
// soft counts its recipients upsert returns.

// setEvent is one event of the batch, normalised as insertEvent would.
type setEvent struct {
	input int // index into the batch
	ev    parse.Event
	scope string
	dec   decision
	rawID int64
	id    int64
	layer int
	// suppressed is where the event suppresses, when it does.
	suppressed suppressed
}

// recordSet records ps, retrying deadlocks and serialization failures as
// transact does.
func (db *DB) recordSet(ctx context.Context, ps []*prepared) ([]recorded, error) {
	var err error
	for attempt := 0; attempt < TransactRetryDefault; attempt++ {
		if attempt > 0 {
			backoff := time.Duration(1<<attempt) * time.Millisecond
			select {
			case <-time.After(backoff + rand.N(backoff)):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var recs []recorded
		recs, err = db.recordSetOnce(ctx, ps)
		if !retryable(err) {
			return recs, interpret(err)
		}
		db.logger.DebugContext(ctx, "retrying batch", "attempt", attempt+1, "error", err)
	}
	return nil, interpret(err)
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
	// Every input of a batch shares one receive time (see RecordBatch).
	now := ps[0].received
	recs := make([]recorded, len(ps))

	// Identical bytes are stored once: later copies are replays.
	writer := make([]bool, len(ps))
	first := map[[32]byte]bool{}
	nRaw := 0
	for i, p := range ps {
		if !first[p.sum] {
			first[p.sum], writer[i] = true, true
			nRaw++
		}
	}
	var evs []*setEvent
	for i, p := range ps {
		if !writer[i] {
			continue
		}
		for _, ev := range p.in.Events {
			if ev.OccurredAt.IsZero() {
				ev.OccurredAt = p.received
			}
			addr, err := parse.NormalizeAddress(ev.Address)
			if err != nil {
				continue // as insertEvent: nothing to key it on
			}
			ev.Address = addr
			scope := p.in.Scope
			if scope == "" || CheckScope(scope) != nil {
				scope = GlobalScope
			}
			evs = append(evs, &setEvent{input: i, ev: ev, scope: scope, dec: pol.decide(ev)})
		}
	}

	var rawIDs, eventIDs []int64
	// The sequences are looked up once per statement (an InitPlan), not
	// once per id.
	if err := conn.QueryRow(ctx, `SELECT
			ARRAY(SELECT nextval((SELECT pg_get_serial_sequence('raw_messages', 'id'))::regclass) FROM generate_series(1, $1)),
			ARRAY(SELECT nextval((SELECT pg_get_serial_sequence('events', 'id'))::regclass) FROM generate_series(1, $2))`,
		nRaw, len(evs)).Scan(&rawIDs, &eventIDs); err != nil {
		return nil, fmt.Errorf("allocate ids: %w", err)
	}
	slices.Sort(rawIDs)
	slices.Sort(eventIDs)
	idOf := make([]int64, len(ps))
	for i, k := 0, 0; i < len(ps); i++ {
		if writer[i] {
			idOf[i] = rawIDs[k]
			k++
		}
	}
	for k, se := range evs {
		se.id, se.rawID = eventIDs[k], idOf[se.input]
	}
	layers := layerEvents(evs)
	byEventID := make(map[int64]*setEvent, len(evs))
	for _, se := range evs {
		byEventID[se.id] = se
	}

	// Round trip 1 begins the transaction and stores the raw inputs, the
	// events and layer 0's recipients; round trip l+1 suppresses layer
	// l and updates layer l+1's recipients; the last also commits.
	defer func() {
		if err != nil && !conn.Conn().IsClosed() {
			_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	created, isNew, softCount := map[int64]bool{}, map[int64]bool{}, map[int64]int{}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	queueRawInsert(b, ps, writer, idOf)
	if len(evs) > 0 {
		queueEventInsert(b, ps, evs)
	}
	suppressQueued := false
	for l := 0; ; l++ {
		recipientStmts := 0
		if l < len(layers) {
			recipientStmts = queueRecipientSet(b, layers[l], pol)
		}
		last := l >= len(layers)
		if last {
			b.Queue("COMMIT")
		}
		br := conn.SendBatch(ctx, b)
		var layer []*setEvent
		if l < len(layers) {
			layer = layers[l]
		}
		if err := readRound(br, l, len(evs) > 0, suppressQueued, layer, recipientStmts, last,
			created, isNew, softCount, byEventID, recs); err != nil {
			br.Close()
			return nil, err
		}
		if err := br.Close(); err != nil {
			return nil, err
		}
		if last {
			break
		}
		b = &pgx.Batch{}
		entries := entriesOf(ps, layers[l], softCount, pol)
		suppressQueued = len(entries) > 0
		if suppressQueued {
			queueSuppressSet(b, entries, now)
		}
	}

	eventIDsOf := make([][]int64, len(ps))
	for _, se := range evs {
		if isNew[se.id] {
			r := &recs[se.input]
			eventIDsOf[se.input] = append(eventIDsOf[se.input], se.id)
			r.events = append(r.events, se.ev)
			r.out.Recorded++
		}
	}
	for i, p := range ps {
		if writer[i] && created[idOf[i]] {
			recs[i].out.Created = true
			ids := eventIDsOf[i]
			if ids == nil {
				ids = make([]int64, 0)
			}
			recs[i].out.Message = p.message(idOf[i], ids)
		}
	}
	if err := readReplays(ctx, conn, ps, recs); err != nil {
		return nil, err
	}
	return recs, nil
}

// readRound reads one round trip's results in the order they were
// queued: BEGIN, raw inputs and events (round 0), a layer's
// suppressions (later rounds), its recipients, and COMMIT (the last).
func readRound(br pgx.BatchResults, round int, hasEvents, hasSuppress bool, layer []*setEvent, recipientStmts int, last bool,
	created, isNew map[int64]bool, softCount map[int64]int, byEventID map[int64]*setEvent, recs []recorded) error {
	if round == 0 {
		if _, err := br.Exec(); err != nil {
			return err
		}
		if err := collectIDs(br, created, "insert raw"); err != nil {
			return err
		}
		if hasEvents {
			if err := collectIDs(br, isNew, "insert events"); err != nil {
				return err
			}
		}
	}
	if hasSuppress {
		if err := collectSuppressed(br, byEventID, recs); err != nil {
			return err
		}
	}
	for range recipientStmts {
		if err := collectSoftCounts(br, layer, softCount); err != nil {
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

// collectSoftCounts reads what a recipients upsert returned, each row's
// key with the failures counted in its window, for the layer's event of
// that key. A replayed event returns no row.
func collectSoftCounts(br pgx.BatchResults, layer []*setEvent, soft map[int64]int) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("update recipients: %w", err)
	}
	byKey := make(map[[2]string]int64, len(layer))
	for _, se := range layer {
		byKey[[2]string{TenantOf(se.scope), parse.AddressKey(se.ev.Address)}] = se.id
	}
	var tenant, key string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&tenant, &key, &n}, func() error {
		if id, ok := byKey[[2]string{tenant, key}]; ok {
			soft[id] = n
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update recipients: %w", err)
	}
	return nil
}

// collectSuppressed reads what a suppressions upsert returned: the event
// and whether it newly suppressed its address.
func collectSuppressed(br pgx.BatchResults, byEventID map[int64]*setEvent, recs []recorded) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	var id int64
	var added bool
	_, err = pgx.ForEachRow(rows, []any{&id, &added}, func() error {
		if se := byEventID[id]; se != nil && added {
			r := &recs[se.input]
			r.out.SuppressionsAdded++
			r.added = append(r.added, se.suppressed)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("suppress: %w", err)
	}
	return nil
}

// queueRawInsert stores the raw bytes of every input that is the first
// with its bytes, under its pre-allocated id; bytes stored before are
// skipped, and their id is then never used.
func queueRawInsert(b *pgx.Batch, ps []*prepared, writer []bool, idOf []int64) {
	var ids []int64
	var sums, bodies [][]byte
	var sources, providers, ctypes, statuses, perrs, kinds []string
	var received []time.Time
	var results []*string
	for i, p := range ps {
		if !writer[i] {
			continue
		}
		in := p.in
		ids, sums, bodies = append(ids, idOf[i]), append(sums, p.sum[:]), append(bodies, in.Raw)
		sources, providers, ctypes = append(sources, in.Source), append(providers, in.Provider), append(ctypes, in.ContentType)
		statuses, perrs, kinds = append(statuses, string(in.Status)), append(perrs, clip(in.Error, 2000)), append(kinds, in.Kind)
		received = append(received, p.received)
		var res *string
		if p.result != nil {
			s := string(p.result)
			res = &s
		}
		results = append(results, res)
	}
	b.Queue(`
		INSERT INTO raw_messages (id, sha256, source, provider, content_type, body, received_at,
			parse_status, parse_error, kind, result)
		OVERRIDING SYSTEM VALUE
		SELECT id, s, src, prov, ct, b, rcv, st, perr, k, res::jsonb
		FROM unnest($1::bigint[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::bytea[], $7::timestamptz[],
			$8::text[], $9::text[], $10::text[], $11::text[]) AS t(id, s, src, prov, ct, b, rcv, st, perr, k, res)
		ORDER BY id
		ON CONFLICT (sha256) DO NOTHING
		RETURNING id`,
		ids, sums, sources, providers, ctypes, bodies, received, statuses, perrs, kinds, results)
}

// queueEventInsert inserts the events of newly stored inputs, in batch
// order, as insertEvent would one by one; a replayed provider event is
// skipped.
func queueEventInsert(b *pgx.Batch, ps []*prepared, evs []*setEvent) {
	n := len(evs)
	ids, rawIDs := make([]int64, n), make([]int64, n)
	addrs, keys, domains, types, classes, reasons := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	statuses, replies, diags, rmtas, remotes, omids := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	sources, providers, scopes := make([]string, n), make([]string, n), make([]string, n)
	peids := make([]*string, n)
	occurred := make([]time.Time, n)
	for i, se := range evs {
		ev, in := se.ev, ps[se.input].in
		ids[i], rawIDs[i] = se.id, se.rawID
		addrs[i], keys[i], domains[i] = ev.Address, parse.AddressKey(ev.Address), parse.AddressDomain(ev.Address)
		types[i], classes[i], reasons[i] = string(ev.Type), string(ev.Class), string(ev.Reason)
		statuses[i], replies[i], diags[i] = clip(string(ev.Status), 32), clip(ev.ReplyCode, 8), clip(ev.Diagnostic, 4000)
		rmtas[i], remotes[i], omids[i] = clip(ev.ReportingMTA, 255), clip(ev.RemoteMTA, 255), clip(ev.OriginalMessageID, 998)
		sources[i], providers[i], scopes[i] = in.Source, in.Provider, se.scope
		if ev.ProviderEventID != "" {
			id := ev.ProviderEventID
			peids[i] = &id
		}
		occurred[i] = ev.OccurredAt
	}
	// A provider event id already in event_keys (or twice in the batch:
	// the first wins) is a replay and its event is skipped.
	b.Queue(`
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
		RETURNING id`,
		ids, rawIDs, addrs, keys, domains, types, classes, reasons, statuses, replies, diags, rmtas, remotes,
		omids, sources, providers, peids, scopes, occurred)
}

// layerEvents splits events into layers in which each address appears at
// most once, keeping each address's events in order. An event that turns
// out to be a replay is dropped from its layer by the join on its id,
// which leaves the order of the rest intact. The join probes the primary
// key (id, created_at) with created_at = now(), which every event of this
// transaction has: one partition, one index lookup per event, whatever the
// planner's statistics say (hence LATERAL ... LIMIT 1, not a plain join).
func layerEvents(evs []*setEvent) [][]*setEvent {
	next := map[string]int{}
	var layers [][]*setEvent
	for _, se := range evs {
		key := parse.AddressKey(se.ev.Address)
		se.layer = next[key]
		next[key]++
		if se.layer == len(layers) {
			layers = append(layers, nil)
		}
		layers[se.layer] = append(layers[se.layer], se)
	}
	for _, l := range layers {
		// Rows are locked in key order, so concurrent batches cannot deadlock.
		slices.SortFunc(l, func(a, b *setEvent) int {
			return cmp.Compare(parse.AddressKey(a.ev.Address), parse.AddressKey(b.ev.Address))
		})
	}
	return layers
}

// queueRecipientSet is applyToRecipient for a layer of distinct
// addresses. The events that touch the soft window (a counted failure or
// a delivery) and the others take two statements, as applyToRecipient's
// upsert differs between them. Both return each row's key with the
// failures counted in its window (not last_event_id, which stays the
// older event's when this one is out of order). It returns the statements
// queued.
func queueRecipientSet(b *pgx.Batch, layer []*setEvent, pol *Policy) int {
	var windowed, plain []*setEvent
	for _, se := range layer {
		if se.ev.Type == parse.EventDelivery || se.dec.counts {
			windowed = append(windowed, se)
		} else {
			plain = append(plain, se)
		}
	}
	queued := 0
	for gi, group := range [][]*setEvent{windowed, plain} {
		if len(group) == 0 {
			continue
		}
		n := len(group)
		tenants, keys, addrs, domains, types, mkeys, reasons := make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		hard, complaint, sender := make([]int32, n), make([]int32, n), make([]int32, n)
		lastBounce, lastDelivery := make([]*time.Time, n), make([]*time.Time, n)
		delivery, counts := make([]bool, n), make([]bool, n)
		ids := make([]int64, n)
		at, days := make([]time.Time, n), make([]time.Time, n)
		for i, se := range group {
			ev := se.ev
			isBounce := ev.Type == parse.EventBounce
			tenants[i], keys[i], addrs[i], domains[i] = TenantOf(se.scope), parse.AddressKey(ev.Address), ev.Address, parse.AddressDomain(ev.Address)
			hard[i] = int32(b2i(isBounce && ev.Class == parse.ClassHard))
			complaint[i] = int32(b2i(ev.Type == parse.EventComplaint))
			sender[i] = int32(b2i(ev.Class == parse.ClassSender))
			occurred := ev.OccurredAt
			if isBounce {
				lastBounce[i] = &occurred
			}
			if ev.Type == parse.EventDelivery {
				lastDelivery[i] = &occurred
			}
			u := occurred.UTC()
			ids[i], types[i], at[i] = se.id, string(ev.Type), occurred
			days[i] = time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC)
			delivery[i], counts[i] = ev.Type == parse.EventDelivery, se.dec.counts
			mkeys[i], reasons[i] = messageKey(ev.OriginalMessageID), string(ev.Reason)
		}
		if gi == 0 {
			// The soft window, as applyToRecipient keeps it: a delivery
			// deletes the counted failures up to its time, a counted
			// failure is kept at most once per UTC day and per original
			// message, and the window is counted from what remains.
			b.Queue(`
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
				)
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
					`+recipientCountersSQL+`
				RETURNING tenant, address_key, soft_count`,
				tenants, keys, addrs, domains, hard, complaint, sender, ids, types, at, lastBounce, lastDelivery,
				delivery, counts, days, mkeys, reasons, pol.window())
		} else {
			// Outside the soft window: counters only, soft count kept.
			b.Queue(`
				INSERT INTO recipients AS r (tenant, address_key, address, domain, soft_count, soft_first_at, hard_count,
					complaint_count, sender_error_count, last_event_id, last_event_type, last_event_at,
					last_bounce_at, last_delivery_at, updated_at)
				SELECT u.tenant, u.k, u.addr, u.dom, 0, NULL, u.hard, u.complaint, u.sender, u.id, u.ty, u.at, u.lb, u.ld, now()
				FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[],
					$7::int[], $8::bigint[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
					AS u(tenant, k, addr, dom, hard, complaint, sender, id, ty, at, lb, ld)
				CROSS JOIN LATERAL (SELECT FROM events e WHERE e.id = u.id AND e.created_at = now() LIMIT 1) e
				ORDER BY u.tenant, u.k
				ON CONFLICT (tenant, address_key) DO UPDATE SET
					address = EXCLUDED.address,
					soft_count = r.soft_count,
					soft_first_at = r.soft_first_at,
					`+recipientCountersSQL+`
				RETURNING tenant, address_key, soft_count`,
				tenants, keys, addrs, domains, hard, complaint, sender, ids, types, at, lastBounce, lastDelivery)
		}
		queued++
	}
	return queued
}

// entriesOf decides, as insertEvent does, which of a layer's new events
// suppress and where.
func entriesOf(ps []*prepared, layer []*setEvent, softCount map[int64]int, pol *Policy) []entry {
	var out []entry
	for _, se := range layer {
		n, ok := softCount[se.id]
		if !ok {
			continue // a replayed event: not applied
		}
		in := ps[se.input].in
		if e := entryFromEvent(pol, se.dec, n, se.id, in.Source, in.Provider, "", se.scope, se.ev); e != nil {
			out = append(out, *e)
			se.suppressed = suppressed{reason: e.Reason, scope: e.Scope}
		}
	}
	return out
}

// queueSuppressSet is suppress for a layer's entries (distinct addresses);
// it returns each entry's event and whether it newly suppressed.
func queueSuppressSet(b *pgx.Batch, entries []entry, now time.Time) {
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.Scope, b.Scope), cmp.Compare(parse.AddressKey(a.Address), parse.AddressKey(b.Address)))
	})
	n := len(entries)
	scopes, addrs, keys, domains, reasons, classes := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	statuses, replies, diags, sources, providers, createdBy, notes := make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	ids := make([]int64, n)
	at := make([]time.Time, n)
	expires := make([]*time.Time, n)
	for i, e := range entries {
		scopes[i], addrs[i], keys[i], domains[i] = e.Scope, e.Address, parse.AddressKey(e.Address), parse.AddressDomain(e.Address)
		reasons[i], classes[i], statuses[i], replies[i] = string(e.Reason), string(e.Class), clip(e.Status, 32), clip(e.ReplyCode, 8)
		diags[i], sources[i], providers[i] = clip(e.Diagnostic, 4000), e.Source, e.Provider
		ids[i], at[i], expires[i], createdBy[i], notes[i] = e.EventID, e.At, e.ExpiresAt, e.CreatedBy, clip(e.Note, 1000)
	}
	// $17 is the time now, as suppressOnConflictSQL expects.
	b.Queue(`
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
			`+suppressOnConflictSQL+`
			RETURNING address_key, last_event_id,
				coalesce(first_event_id = last_event_id, false) AS added,
				coalesce(state_event_id = last_event_id, false) AS changed
		)
		SELECT last_event_id, added FROM up,
			LATERAL (SELECT CASE WHEN up.changed THEN pg_notify('`+channelSuppressions+`', up.address_key) END) n`,
		scopes, addrs, keys, domains, reasons, classes, statuses, replies, diags, sources, providers, ids, at,
		expires, createdBy, notes, now)
}

// readReplays gives each input whose bytes were stored before (by an
// earlier transaction or earlier in this batch) the stored message, as
// recordTx reads it: with the event ids recorded from those bytes.
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
