package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// randomHistory builds inputs that exercise every rule of event
// application: a few addresses in different spellings, every event type
// and class, soft failures repeated within and beyond the window, on the
// same day and message or not, deliveries that clear them, equal and
// out-of-order times, entries that have expired by now, tenants' and
// lists' scopes (and a malformed one), replayed provider ids, repeated raw
// bytes and unusable addresses.
func randomHistory(r *rand.Rand, n int) []store.Input {
	addrs := []string{"a@example.com", "A@Example.COM", "b@example.com", "c@example.net", "<d@example.org>", "not an address"}
	type kind struct {
		typ    parse.EventType
		class  parse.Class
		reason parse.Reason
		status parse.Status
	}
	kinds := []kind{
		{parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown, "5.1.1"},
		{parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2"},
		{parse.EventBounce, parse.ClassSoft, parse.ReasonOther, "4.0.0"},
		{parse.EventBounce, parse.ClassSoft, parse.ReasonOther, "4.0.0"},
		{parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxDisabled, "5.2.1"},
		{parse.EventBounce, parse.ClassSender, parse.ReasonProtocolError, "5.5.1"},
		{parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint, ""},
		{parse.EventDelivery, parse.ClassNone, parse.ReasonDelivered, "2.0.0"},
		{parse.EventDelay, parse.ClassSoft, parse.ReasonDelayed, "4.4.1"},
		{parse.EventUnsubscribe, parse.ClassNone, parse.ReasonOther, ""},
		{parse.EventAutoReply, parse.ClassNone, parse.ReasonAutoReply, ""},
	}
	scopes := []string{"", "", "", "list:news", "tenant:acme", "tenant:acme/list:news", "not a scope!"}
	// Times fall on 12-hour marks over 45 days before "now" (see the test),
	// so many are equal, several share a day, and entries with an expiry
	// may have expired by now.
	now := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	// First the boundaries random times rarely hit: a soft failure and a
	// delivery at the same instant, then more soft failures; an entry that
	// has expired by now, hit again.
	t0 := now.Add(-10 * 24 * time.Hour)
	soft := func(addr string, at time.Time, msg string) parse.Event {
		return parse.Event{Address: addr, Type: parse.EventBounce, Class: parse.ClassSoft, Reason: parse.ReasonOther,
			Status: "4.0.0", OccurredAt: at, OriginalMessageID: msg}
	}
	hard := func(addr string, at time.Time) parse.Event {
		return parse.Event{Address: addr, Type: parse.EventBounce, Class: parse.ClassHard, Reason: parse.ReasonUserUnknown,
			Status: "5.1.1", OccurredAt: at}
	}
	var out []store.Input
	for i, evs := range [][]parse.Event{
		{soft("edge@example.com", t0, "<e1@example.org>")},
		{{Address: "edge@example.com", Type: parse.EventDelivery, Class: parse.ClassNone, Reason: parse.ReasonDelivered, OccurredAt: t0}},
		{soft("edge@example.com", t0.Add(24*time.Hour), "<e2@example.org>"), soft("edge@example.com", t0.Add(48*time.Hour), "")},
		{hard("old@example.com", now.Add(-40*24*time.Hour)), hard("old@example.com", now.Add(-39*24*time.Hour))},
		{hard("old@example.com", now.Add(-24*time.Hour)), hard("old@example.com", now.Add(-23*time.Hour))},
	} {
		out = append(out, store.Input{Source: "webhook", Provider: "edge", ContentType: "application/json",
			Raw: fmt.Appendf(nil, "edge %d", i), Status: store.ParseParsed, Kind: "events", Events: evs})
	}
	for i := range n {
		if i > 0 && r.IntN(10) == 0 {
			out = append(out, out[r.IntN(len(out))]) // the same bytes again
			continue
		}
		provider := []string{"sendgrid", "mailgun", ""}[r.IntN(3)]
		in := store.Input{
			Source: "webhook", Provider: provider, ContentType: "application/json",
			Raw: fmt.Appendf(nil, "payload %d", i), Status: store.ParseParsed, Kind: "events",
			Result: map[string]int{"n": i},
		}
		if r.IntN(8) == 0 {
			in.Source = "http"
		}
		in.Scope = scopes[r.IntN(len(scopes))]
		for range r.IntN(5) {
			k := kinds[r.IntN(len(kinds))]
			ev := parse.Event{
				Address: addrs[r.IntN(len(addrs))], Type: k.typ, Class: k.class, Reason: k.reason,
				Status: k.status, Diagnostic: fmt.Sprintf("diag %d", r.IntN(3)), ReplyCode: "550",
				OccurredAt:        now.Add(-time.Duration(r.IntN(45*2)) * 12 * time.Hour),
				OriginalMessageID: []string{"", "<m1@example.org>", "<m2@example.org>"}[r.IntN(3)],
			}
			if r.IntN(3) > 0 {
				ev.ProviderEventID = fmt.Sprintf("evt-%d", r.IntN(n))
			}
			in.Events = append(in.Events, ev)
		}
		out = append(out, in)
	}
	return out
}

// snapshot reads every table in a form where two databases that recorded
// the same history compare equal: ids become their rank.
func snapshot(t *testing.T, url string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	queries := map[string]string{
		"raw": `SELECT encode(sha256, 'hex'), source, provider, content_type, encode(body, 'escape'), received_at,
			parse_status, parse_error, kind, coalesce(result::text, 'null') FROM raw_messages ORDER BY id`,
		"events": `SELECT (SELECT count(*) FROM raw_messages r WHERE r.id <= e.raw_id), coalesce(address, address_key), address_key, type,
			class, reason, status, reply_code, diagnostic, reporting_mta, remote_mta, original_message_id, source,
			provider, coalesce(provider_event_id, '-'), scope, actor, note, occurred_at FROM events e ORDER BY id`,
		"recipients": `SELECT tenant, address_key, address, soft_count, soft_first_at, hard_count, complaint_count,
			sender_error_count, (SELECT count(*) FROM events e WHERE e.id <= r.last_event_id), last_event_type,
			last_event_at, last_bounce_at, last_delivery_at, reset_at FROM recipients r ORDER BY tenant, address_key`,
		"suppressions": `SELECT scope, tenant, address, address_key, domain, reason, class, status, reply_code, diagnostic,
			source, provider, (SELECT count(*) FROM events e WHERE e.id <= s.first_event_id),
			(SELECT count(*) FROM events e WHERE e.id <= s.last_event_id),
			(SELECT count(*) FROM events e WHERE e.id <= s.state_event_id), event_count, first_seen_at,
			last_seen_at, expires_at, created_by, note, created_at FROM suppressions s ORDER BY scope, address_key`,
		"soft_failures": `SELECT tenant, address_key, day, message_key, (SELECT count(*) FROM events e WHERE e.id <= f.event_id),
			reason, occurred_at FROM soft_failures f ORDER BY tenant, address_key, day, message_key`,
	}
	snap := map[string][]string{}
	for name, q := range queries {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			snap[name] = append(snap[name], fmt.Sprint(vals))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return snap
}

type outcomeShape struct {
	Created                     bool
	Recorded, Added, EventCount int
	SHA256                      string
}

func shape(o store.Outcome) outcomeShape {
	return outcomeShape{o.Created, o.Recorded, o.SuppressionsAdded, len(o.Message.EventIDs), o.Message.SHA256}
}

// TestRecordBatchMatchesRecord: recording a history in batches of any
// size must leave every table exactly as recording it input by input
// (batches of one) does, and answer each input the same: layering
// (plan.go) applies each address's events in order, replays within a
// batch are replays, and nothing depends on where a batch ends.
func TestRecordBatchMatchesRecord(t *testing.T) {
	t.Parallel()
	strict := store.Policy{
		SoftThreshold: 2, SoftWindowDays: 30, SoftExpiryDays: 10, HardExpiryDays: 20, ComplaintExpiryDays: 15,
		ComplaintScope: store.ComplaintList,
		Reasons: map[parse.Reason]store.ReasonRule{
			parse.ReasonMailboxFull:     {Threshold: intp(1), ExpiryDays: intp(3)},
			parse.ReasonMailboxDisabled: {Suppress: boolp(false)},
			parse.ReasonUserUnknown:     {Threshold: intp(2)},
		},
	}
	for _, pol := range []struct {
		name   string
		policy *store.Policy
	}{{"default policy", nil}, {"strict policy", &strict}} {
		t.Run(pol.name, func(t *testing.T) {
			t.Parallel()
			for seed := range uint64(3) {
				t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
					r := rand.New(rand.NewPCG(seed, 7))
					history := randomHistory(r, 150)
					now := func() time.Time { return time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC) }
					ctx := context.Background()
					oneURL, batchURL := dbtest.URL(t), dbtest.URL(t)
					one, err := store.Open(ctx, oneURL, store.Options{NowFunc: now})
					if err != nil {
						t.Fatal(err)
					}
					defer one.Close()
					batched, err := store.Open(ctx, batchURL, store.Options{NowFunc: now})
					if err != nil {
						t.Fatal(err)
					}
					defer batched.Close()
					if pol.policy != nil {
						for _, db := range []*store.DB{one, batched} {
							if _, err := db.PutPolicy(ctx, *pol.policy, "test"); err != nil {
								t.Fatal(err)
							}
						}
					}
					var want, got []outcomeShape
					for _, in := range history {
						out, err := one.Record(ctx, in)
						if err != nil {
							t.Fatal(err)
						}
						want = append(want, shape(out))
					}
					for rest := history; len(rest) > 0; {
						n := min(1+r.IntN(40), len(rest))
						for i, res := range batched.RecordBatch(ctx, rest[:n]) {
							if res.Err != nil {
								t.Fatalf("RecordBatch input %d: %v", i, res.Err)
							}
							got = append(got, shape(res.Outcome))
						}
						rest = rest[n:]
					}
					if !reflect.DeepEqual(got, want) {
						for i := range want {
							if got[i] != want[i] {
								t.Errorf("input %d: RecordBatch outcome %+v, Record %+v", i, got[i], want[i])
							}
						}
					}
					a, b := snapshot(t, oneURL), snapshot(t, batchURL)
					for _, table := range []string{"raw", "events", "recipients", "suppressions", "soft_failures"} {
						if len(a[table]) == 0 {
							t.Errorf("%s: history recorded nothing; the test proves nothing", table)
						}
						if !reflect.DeepEqual(a[table], b[table]) {
							t.Errorf("%s differ:\nRecord:      %s\nRecordBatch: %s", table,
								strings.Join(a[table], "\n             "), strings.Join(b[table], "\n             "))
						}
					}
					expiring := 0
					for _, row := range a["suppressions"] {
						if strings.Contains(row, "+0000 UTC 2026") || strings.Count(row, "UTC") > 3 {
							expiring++
						}
					}
					if pol.policy != nil && expiring == 0 {
						t.Error("no suppression with an expiry: the history does not exercise expiry")
					}
				})
			}
		})
	}
}

func TestRecordBatchIsolatesBadInputs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	good := func(i int) store.Input {
		return input(fmt.Sprintf("iso-%d", i), bounce(fmt.Sprintf("iso%d@example.com", i), parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now()))
	}
	badType := good(1)
	badType.Events[0].Type = "explosion"
	// Passes validation, but PostgreSQL refuses a source that is not
	// UTF-8: the whole batch fails, then each input is retried alone.
	refused := good(3)
	refused.Source = "http\xff"
	ins := []store.Input{good(0), badType, good(2), refused, good(4)}
	res := db.RecordBatch(ctx, ins)
	if !errors.Is(res[1].Err, store.ErrInvalidInput) {
		t.Errorf("input with a bad event type: %v, want ErrInvalidInput", res[1].Err)
	}
	if res[3].Err == nil {
		t.Errorf("input PostgreSQL refuses: no error")
	}
	for _, i := range []int{0, 2, 4} {
		if res[i].Err != nil || !res[i].Outcome.Created || res[i].Outcome.Recorded != 1 {
			t.Errorf("good input %d = %+v, %v; want recorded", i, res[i].Outcome, res[i].Err)
		}
		if _, err := db.GetSuppression(ctx, fmt.Sprintf("iso%d@example.com", i), ""); err != nil {
			t.Errorf("good input %d not suppressed: %v", i, err)
		}
	}
}

func TestGroupCommitterBatchesConcurrentCallers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	db := dbtest.Open(t, store.Options{})
	g, err := store.NewGroupCommitter(db, store.GroupCommitOptions{Workers: 1, MaxWait: 5 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	const callers, each = 40, 10
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ev := bounce(fmt.Sprintf("gc%d-%d@example.com", c, i), parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", time.Now())
				ev.ProviderEventID = fmt.Sprintf("gc-%d-%d", c, i)
				in := input(fmt.Sprintf("gc-%d-%d", c, i), ev)
				in.Source, in.Provider = "webhook", "generic"
				out, err := g.Record(ctx, in)
				if err != nil || !out.Created || out.Recorded != 1 {
					t.Errorf("Record(%d, %d) = %+v, %v", c, i, out, err)
				}
				// The same bytes again: acknowledged, nothing new.
				if out, err := g.Record(ctx, in); err != nil || out.Created || out.Recorded != 0 {
					t.Errorf("replay Record(%d, %d) = %+v, %v", c, i, out, err)
				}
			}
		}()
	}
	wg.Wait()
	evs, _, err := db.ListEvents(ctx, store.EventFilter{Limit: 1000})
	if err != nil || len(evs) != callers*each {
		t.Errorf("events stored = %d (%v), want %d", len(evs), err, callers*each)
	}
	batches := testutil.CollectAndCount(reg, "bounced_store_batch_inputs")
	if batches != 1 {
		t.Fatalf("bounced_store_batch_inputs families = %d", batches)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "bounced_store_batch_inputs" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleSum() != 2*callers*each || h.GetSampleCount() >= 2*callers*each {
			t.Errorf("batches: %d holding %v inputs; want fewer batches than inputs", h.GetSampleCount(), h.GetSampleSum())
		}
	}
}

func TestGroupCommitterUnavailable(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	g, err := store.NewGroupCommitter(db, store.GroupCommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Record(context.Background(), input("down"))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Record() against a closed port = %v, want ErrUnavailable", err)
	}
	g.Close()
	if _, err := g.Record(context.Background(), input("late")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Record() after Close = %v, want ErrClosed", err)
	}
}
