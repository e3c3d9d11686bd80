package store_test

import (
	"context"
	"errors"
	"fmt"
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

func TestMain(m *testing.M) { dbtest.Main(m) }

// input builds a parsed input holding one event per given event.
func input(raw string, evs ...parse.Event) store.Input {
	return store.Input{
		Source: "http", ContentType: "message/rfc822", Raw: []byte(raw),
		Status: store.ParseParsed, Kind: "bounce", Result: map[string]string{"k": "v"}, Events: evs,
	}
}

func bounce(addr string, class parse.Class, reason parse.Reason, status parse.Status, at time.Time) parse.Event {
	return parse.Event{Address: addr, Type: parse.EventBounce, Class: class, Reason: reason, Status: status, OccurredAt: at}
}

func TestRecordIsIdempotentOnRawBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	in := input("raw-1", bounce("a@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now()))
	first, err := db.Record(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Created || first.Recorded != 1 || first.SuppressionsAdded != 1 || len(first.Message.EventIDs) != 1 {
		t.Fatalf("first Record() = %+v, want created with 1 event and 1 suppression", first)
	}
	second, err := db.Record(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if second.Created || second.Message.ID != first.Message.ID || second.Recorded != 0 {
		t.Errorf("second Record() = %+v, want the same message, nothing recorded", second)
	}
	if len(second.Message.EventIDs) != 1 || second.Message.EventIDs[0] != first.Message.EventIDs[0] {
		t.Errorf("second Record() event ids %v, want %v", second.Message.EventIDs, first.Message.EventIDs)
	}
	evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: "a@example.com"})
	if err != nil || len(evs) != 1 {
		t.Errorf("ListEvents() = %d events, %v, want 1", len(evs), err)
	}
}

func TestRecordConcurrentSameBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	in := input("raw-concurrent", bounce("c@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now()))
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, ids := 0, map[int64]bool{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := db.Record(ctx, in)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[out.Message.ID] = true
			if out.Created {
				created++
			}
		}()
	}
	wg.Wait()
	if created != 1 || len(ids) != 1 {
		t.Errorf("8 concurrent Record() of the same bytes: %d created, %d ids, want 1 and 1", created, len(ids))
	}
	evs, _, _ := db.ListEvents(ctx, store.EventFilter{Address: "c@example.com"})
	if len(evs) != 1 {
		t.Errorf("got %d events, want 1", len(evs))
	}
}

// TestDecisionRule checks what each class does to the suppression list and
// the recipient's counters.
func TestDecisionRule(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC().Truncate(time.Second)
	tests := []struct {
		name       string
		ev         parse.Event
		suppressed bool
		soft       int
		hard       int
		sender     int
	}{
		{"hard user unknown suppresses", bounce("u@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", now), true, 0, 1, 0},
		{"bad syntax suppresses", bounce("u@example.com", parse.ClassHard, parse.ReasonBadSyntax, "5.1.3", now), true, 0, 1, 0},
		{"soft counts", bounce("u@example.com", parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", now), false, 1, 0, 0},
		{"sender 503 never suppresses", bounce("u@example.com", parse.ClassSender, parse.ReasonProtocolError, "5.5.1", now), false, 0, 0, 1},
		{"sender auth never suppresses", bounce("u@example.com", parse.ClassSender, parse.ReasonAuthRequired, "5.7.0", now), false, 0, 0, 1},
		{"complaint suppresses", parse.Event{Address: "u@example.com", Type: parse.EventComplaint, Class: parse.ClassComplaint, Reason: parse.ReasonComplaint, OccurredAt: now}, true, 0, 0, 0},
		{"delay does not count", parse.Event{Address: "u@example.com", Type: parse.EventDelay, Class: parse.ClassSoft, Reason: parse.ReasonDelayed, Status: "4.4.1", OccurredAt: now}, false, 0, 0, 0},
	}
	db := dbtest.Open(t, store.Options{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			ev := tt.ev
			ev.Address = fmt.Sprintf("case%d@example.com", i)
			if _, err := db.Record(ctx, input("decision-"+tt.name, ev)); err != nil {
				t.Fatal(err)
			}
			_, err := db.GetSuppression(ctx, ev.Address, "")
			if got := err == nil; got != tt.suppressed {
				t.Errorf("suppressed = %v (err %v), want %v", got, err, tt.suppressed)
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetSuppression error %v, want ErrNotFound", err)
			}
			r, err := db.GetRecipient(ctx, ev.Address)
			if err != nil {
				t.Fatal(err)
			}
			if r.SoftCount != tt.soft || r.HardCount != tt.hard || r.SenderErrorCount != tt.sender {
				t.Errorf("recipient counters soft=%d hard=%d sender=%d, want %d %d %d", r.SoftCount, r.HardCount, r.SenderErrorCount, tt.soft, tt.hard, tt.sender)
			}
		})
	}
}

func TestDeliveryResetsSoftCount(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	t0 := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Second)
	addr := "soft@example.com"
	// Soft failures count once per day, so these are a day apart.
	for i := range 2 {
		if _, err := db.Record(ctx, input(fmt.Sprintf("soft-%d", i), bounce(addr, parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", t0.Add(time.Duration(i)*24*time.Hour)))); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := db.GetRecipient(ctx, addr)
	if r.SoftCount != 2 || r.SoftFirstAt == nil || !r.SoftFirstAt.Equal(t0) {
		t.Fatalf("after 2 soft bounces soft_count=%d first=%v, want 2 and %v", r.SoftCount, r.SoftFirstAt, t0)
	}
	// A delivery older than the last bounce proves nothing.
	old := parse.Event{Address: addr, Type: parse.EventDelivery, Class: parse.ClassNone, Reason: parse.ReasonDelivered, OccurredAt: t0.Add(-time.Minute)}
	if _, err := db.Record(ctx, input("old-delivery", old)); err != nil {
		t.Fatal(err)
	}
	if r, _ = db.GetRecipient(ctx, addr); r.SoftCount != 2 {
		t.Errorf("older delivery reset soft_count to %d, want 2", r.SoftCount)
	}
	fresh := old
	fresh.OccurredAt = t0.Add(25 * time.Hour)
	if _, err := db.Record(ctx, input("new-delivery", fresh)); err != nil {
		t.Fatal(err)
	}
	r, _ = db.GetRecipient(ctx, addr)
	if r.SoftCount != 0 || r.SoftFirstAt != nil || r.LastDeliveryAt == nil || r.LastEventType != "delivery" {
		t.Errorf("after a newer delivery: %+v, want soft_count 0 and last event delivery", r)
	}
}

func TestProviderEventReplayIsIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	db := dbtest.Open(t, store.Options{Registerer: reg})
	ev := bounce("p@example.com", parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", time.Now())
	ev.ProviderEventID = "evt-1"
	a := input("payload-a", ev)
	a.Source, a.Provider = "webhook", "sendgrid"
	b := a
	b.Raw = []byte("payload-b, same event resent in a different batch")
	if _, err := db.Record(ctx, a); err != nil {
		t.Fatal(err)
	}
	out, err := db.Record(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if !out.Created || out.Recorded != 0 {
		t.Errorf("replayed event: created=%v recorded=%d, want a new raw row and no event", out.Created, out.Recorded)
	}
	r, _ := db.GetRecipient(ctx, "p@example.com")
	if r.SoftCount != 1 {
		t.Errorf("soft_count = %d after a replayed event, want 1", r.SoftCount)
	}
	if got := testutil.ToFloat64(mustCounter(t, reg, "bounced_events_total")); got != 1 {
		t.Errorf("bounced_events_total = %v, want 1", got)
	}
}

// TestConcurrentSameProviderEvent: the same provider event in different
// bodies, recorded at once, is recorded once, with one recipient row and
// one suppression; the write path's inserts meet on the unique indexes and
// the losers retry.
func TestConcurrentSameProviderEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	ev := bounce("race@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now())
	ev.ProviderEventID = "evt-race"
	var wg sync.WaitGroup
	var mu sync.Mutex
	recorded, added := 0, 0
	for i := range 8 {
		wg.Go(func() {
			in := input(fmt.Sprintf("race-%d", i), ev)
			in.Source, in.Provider = "webhook", "sendgrid"
			out, err := db.Record(ctx, in)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			recorded += out.Recorded
			added += out.SuppressionsAdded
		})
	}
	wg.Wait()
	evs, _, _ := db.ListEvents(ctx, store.EventFilter{Address: "race@example.com"})
	r, err := db.GetRecipient(ctx, "race@example.com")
	if recorded != 1 || added != 1 || len(evs) != 1 || err != nil || r.HardCount != 1 {
		t.Errorf("8 concurrent copies of one provider event: %d recorded, %d suppressions added, %d events, recipient %+v (%v); want 1, 1, 1, hard_count 1",
			recorded, added, len(evs), r, err)
	}
}

// TestDeliveryToUnknownAddressKeepsNoState: a delivery to an address with
// no state is recorded as an event, but writes no recipient row: there is
// nothing for it to clear.
func TestDeliveryToUnknownAddressKeepsNoState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	ev := parse.Event{Address: "fine@example.com", Type: parse.EventDelivery, Class: parse.ClassNone, Reason: parse.ReasonDelivered, OccurredAt: time.Now()}
	out, err := db.Record(ctx, input("delivered", ev))
	if err != nil || out.Recorded != 1 {
		t.Fatalf("Record(delivery) = %+v, %v", out, err)
	}
	if _, err := db.GetRecipient(ctx, "fine@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRecipient after a delivery only = %v, want ErrNotFound", err)
	}
	if evs, _, _ := db.ListEvents(ctx, store.EventFilter{Address: "fine@example.com"}); len(evs) != 1 || evs[0].Type != parse.EventDelivery {
		t.Errorf("events = %+v, want the delivery", evs)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return sum })
		}
	}
	t.Fatalf("metric %s not registered", name)
	return nil
}

func TestDeleteSuppression(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	addr := "Del@Example.com"
	norm, _ := parse.NormalizeAddress(addr)
	if _, err := db.Record(ctx, input("del", bounce(norm, parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now()))); err != nil {
		t.Fatal(err)
	}
	// Comparison is case-insensitive on the whole address.
	if _, err := db.GetSuppression(ctx, "del@example.com", ""); err != nil {
		t.Fatalf("GetSuppression(lower case) = %v, want found", err)
	}
	removed, err := db.DeleteSuppression(ctx, "DEL@example.com", "", "ops-key", "user fixed mailbox")
	if err != nil {
		t.Fatal(err)
	}
	if removed.Reason != parse.ReasonUserUnknown {
		t.Errorf("removed entry reason %q", removed.Reason)
	}
	if _, err := db.GetSuppression(ctx, norm, ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete GetSuppression() = %v, want ErrNotFound", err)
	}
	if _, err := db.DeleteSuppression(ctx, norm, "", "ops-key", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete = %v, want ErrNotFound", err)
	}
	evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: norm, Type: parse.EventSuppressionRemoved})
	if err != nil || len(evs) != 1 || evs[0].Actor != "ops-key" || evs[0].Note != "user fixed mailbox" {
		t.Errorf("removal events = %+v, %v, want one by ops-key with the note", evs, err)
	}
}

func TestListSuppressionsPagingIsStable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	add := func(i int) {
		t.Helper()
		addr := fmt.Sprintf("page%03d@example.com", i)
		if _, err := db.Record(ctx, input(addr, bounce(addr, parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 7 {
		add(i)
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		items, next, err := db.ListSuppressions(ctx, store.SuppressionFilter{Cursor: cursor, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, s := range items {
			if seen[s.Email] {
				t.Errorf("%s seen twice", s.Email)
			}
			seen[s.Email] = true
		}
		add(100 + pages) // concurrent inserts must not shift later pages
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 7 || pages != 3 {
		t.Errorf("paged %d entries in %d pages, want 7 in 3", len(seen), pages)
	}
	if _, _, err := db.ListSuppressions(ctx, store.SuppressionFilter{Cursor: "!!"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("bad cursor error = %v, want ErrBadCursor", err)
	}
}

func TestListEventsFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	base := time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour) // relative: no test depends on the date
	for i := range 5 {
		ev := bounce("f@example.com", parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", base.Add(time.Duration(i)*time.Hour))
		if i == 4 {
			ev.Type, ev.Class, ev.Reason = parse.EventDelivery, parse.ClassNone, parse.ReasonDelivered
		}
		if _, err := db.Record(ctx, input(fmt.Sprintf("ev-%d", i), ev)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		f    store.EventFilter
		want int
	}{
		{"all of recipient", store.EventFilter{Address: "F@example.com"}, 5},
		{"type", store.EventFilter{Type: parse.EventDelivery}, 1},
		{"since inclusive", store.EventFilter{Since: base.Add(3 * time.Hour)}, 2},
		{"until exclusive", store.EventFilter{Until: base.Add(2 * time.Hour)}, 2},
		{"other recipient", store.EventFilter{Address: "g@example.com"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, _, err := db.ListEvents(ctx, tt.f)
			if err != nil || len(evs) != tt.want {
				t.Errorf("ListEvents(%+v) = %d, %v, want %d", tt.f, len(evs), err, tt.want)
			}
		})
	}
	// Paging newest first visits every event once.
	var got []time.Time
	cursor := ""
	for {
		evs, next, err := db.ListEvents(ctx, store.EventFilter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			got = append(got, e.OccurredAt)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 5 || !got[0].After(got[4]) {
		t.Errorf("paged events %v, want 5 newest first", got)
	}
}

// TestEventAddressKeepsItsCase: an event stores its address only where
// it differs from the key (migration 00031) and its domain not at all;
// both read back as recorded, for a mixed-case and a lowercase address.
func TestEventAddressKeepsItsCase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, url := dbtest.OpenURL(t, store.Options{})
	start, err := db.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var want []string
	for _, addr := range []string{"Kate.Smith@Example.COM", "low@sub.example.org"} {
		norm, err := parse.NormalizeAddress(addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Record(ctx, input("case-"+addr, bounce(norm, parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", now))); err != nil {
			t.Fatal(err)
		}
		key := parse.AddressKey(norm)
		evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: key})
		if err != nil || len(evs) != 1 {
			t.Fatalf("ListEvents(%s) = %d events, %v", key, len(evs), err)
		}
		if evs[0].Address != norm || evs[0].Domain != parse.AddressDomain(key) {
			t.Errorf("event of %s reads back address %q, domain %q; want %q, %q",
				addr, evs[0].Address, evs[0].Domain, norm, parse.AddressDomain(key))
		}
		want = append(want, "bounce "+norm, "suppression_added "+norm)
	}
	// The bounce change keeps no address of its own (00030): it reads its
	// event's, case and all.
	changes, _ := waitChanges(t, db, start, store.ChangeFilter{}, len(want))
	var got []string
	for _, c := range changes {
		got = append(got, string(c.Type)+" "+c.Email)
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("changes %q, want %q", got, want)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored, nulls int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE address IS NULL) FROM events`).Scan(&stored, &nulls); err != nil {
		t.Fatal(err)
	}
	if stored != 2 || nulls != 1 {
		t.Errorf("%d events, %d without their own address; want 2 and 1 (only the lowercase one)", stored, nulls)
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, store.KnownSchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("Migrate() on a newer schema = %v, want ErrSchemaTooNew", err)
	}
}

func TestMigrateIsRepeatable(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, store.Options{})
	res, err := db.Migrate(context.Background())
	if err != nil || len(res.Applied) != 0 || res.To != store.KnownSchemaVersion() {
		t.Errorf("Migrate() on a migrated database = %+v, %v, want nothing applied at %d", res, err, store.KnownSchemaVersion())
	}
}

func TestUnavailableDatabase(t *testing.T) {
	t.Parallel()
	db, err := store.Open(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Record(context.Background(), input("x"))
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Record() against a closed port = %v, want ErrUnavailable", err)
	}
	if err := db.Ping(context.Background()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Ping() = %v, want ErrUnavailable", err)
	}
}
