package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// readAll reads every change after pos that f keeps, in feed order, as
// far as the feed can be read now: a transaction still running anywhere
// in the cluster (another test's) holds back what can be read.
func readAll(t *testing.T, db *store.DB, pos store.Position, f store.ChangeFilter) ([]store.Change, store.Position) {
	t.Helper()
	var all []store.Change
	for {
		page, err := db.ReadChanges(context.Background(), pos, f, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Changes...)
		pos = page.Next
		if len(page.Changes) < 2 {
			return all, pos
		}
	}
}

// waitChanges reads changes after pos until it has read n, or fails.
func waitChanges(t *testing.T, db *store.DB, pos store.Position, f store.ChangeFilter, n int) ([]store.Change, store.Position) {
	t.Helper()
	var all []store.Change
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, next := readAll(t, db, pos, f)
		all, pos = append(all, page...), next
		if len(all) >= n || time.Now().After(deadline) {
			return all, pos
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describe lists changes as "type email scope".
func describeChanges(cs []store.Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c.Type) + " " + c.Email + " " + c.Scope
	}
	return out
}

// TestChangesOfEveryPath: a bounce, a complaint, an add by hand, an
// import, a delete and an expiry each record their change of the list,
// once, in the transaction of the change; what changes nothing (a bounce
// on an address already suppressed, a soft bounce) records none. Every
// bounce and complaint event is a change of its own type too.
func TestChangesOfEveryPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	clock := now
	var mu sync.Mutex
	db := dbtest.Open(t, store.Options{NowFunc: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	start, err := db.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hard := bounce("hard@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", now)
	if _, err := db.Record(ctx, input("bounce-1", hard)); err != nil {
		t.Fatal(err)
	}
	// The same address again, and a soft bounce: no change of any list.
	if _, err := db.Record(ctx, input("bounce-2", bounce("hard@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", now),
		bounce("soft@example.com", parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", now))); err != nil {
		t.Fatal(err)
	}
	complaint := parse.Event{Address: "angry@example.com", Type: parse.EventComplaint, Class: parse.ClassComplaint,
		Reason: parse.ReasonComplaint, OccurredAt: now}
	in := input("complaint-1", complaint)
	in.Scope = "tenant:acme/list:news"
	if _, err := db.Record(ctx, in); err != nil {
		t.Fatal(err)
	}
	exp := now.Add(time.Hour)
	if _, err := db.AddSuppressions(ctx, []store.NewSuppression{{Email: "manual@example.com", Scope: "list:news",
		Reason: store.ReasonManual, ExpiresAt: &exp}}, "ops", "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ImportSuppressions(ctx, &rows{items: []store.NewSuppression{manual("imported@example.com", "")}}, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteSuppression(ctx, "hard@example.com", "global", "ops", "fixed"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clock = now.Add(2 * time.Hour)
	mu.Unlock()
	if n, err := db.CleanupExpired(ctx); err != nil || n != 1 {
		t.Fatalf("CleanupExpired() = %d, %v, want 1", n, err)
	}

	all, _ := waitChanges(t, db, start, store.ChangeFilter{}, 10)
	wantAll := []string{
		"bounce hard@example.com global",
		"suppression_added hard@example.com global",
		"bounce hard@example.com global",
		"bounce soft@example.com global",
		"complaint angry@example.com tenant:acme/list:news",
		"suppression_added angry@example.com tenant:acme",
		"suppression_added manual@example.com list:news",
		"suppression_added imported@example.com global",
		"suppression_removed hard@example.com global",
		"suppression_removed manual@example.com list:news",
	}
	if d := describeChanges(all); !slices.Equal(d, wantAll) {
		t.Fatalf("changes =\n%q\nwant\n%q", d, wantAll)
	}
	if c := all[3]; c.Class != "soft" || c.Reason != "mailbox_full" || c.Status != "4.2.2" || c.EventID == nil {
		t.Errorf("soft bounce's change = %+v", c)
	}
	got, _ := waitChanges(t, db, start, store.ChangeFilter{Types: []store.ChangeType{store.ChangeSuppressionAdded, store.ChangeSuppressionRemoved}}, 6)
	want := []string{
		"suppression_added hard@example.com global",
		"suppression_added angry@example.com tenant:acme",
		"suppression_added manual@example.com list:news",
		"suppression_added imported@example.com global",
		"suppression_removed hard@example.com global",
		"suppression_removed manual@example.com list:news",
	}
	if d := describeChanges(got); !slices.Equal(d, want) {
		t.Fatalf("changes =\n%q\nwant\n%q", d, want)
	}
	if c := got[0]; c.Reason != "user_unknown" || c.Class != "hard" || c.Status != "5.1.1" || c.Source != "http" || c.EventID == nil {
		t.Errorf("bounce's change = %+v, want user_unknown, hard, 5.1.1 from http, with its event", c)
	}
	// The complaint's entry keeps its own class and reads its address
	// (as the event wrote it) and source from the event (migration 00030).
	if c := got[1]; c.Reason != "complaint" || c.Class != "complaint" || c.Source != "http" || c.Email != "angry@example.com" {
		t.Errorf("complaint's change = %+v, want complaint from http", c)
	}
	if c := got[2]; c.Reason != "manual" || c.Source != "api" || c.Actor != "ops" {
		t.Errorf("manual add's change = %+v, want manual from api by ops", c)
	}
	if c := got[4]; c.Actor != "ops" || c.Note != "fixed" || c.Reason != "user_unknown" {
		t.Errorf("delete's change = %+v, want by ops, noted, with the entry's reason", c)
	}
	if c := got[5]; c.Actor != "system" || c.Note != "expired" || c.ExpiresAt == nil || !c.OccurredAt.Equal(exp) {
		t.Errorf("expiry's change = %+v, want by system at its expiry %v", c, exp)
	}

	// Filters: one tenant, one type, one scope.
	tenant, _ := waitChanges(t, db, start, store.ChangeFilter{Tenant: "acme", OnlyTenant: true}, 2)
	if d := describeChanges(tenant); !slices.Equal(d, []string{"complaint angry@example.com tenant:acme/list:news", "suppression_added angry@example.com tenant:acme"}) {
		t.Errorf("acme's changes = %q", d)
	}
	removedOnly, _ := waitChanges(t, db, start, store.ChangeFilter{Types: []store.ChangeType{store.ChangeSuppressionRemoved}, Scopes: []string{"list:news"}}, 1)
	if d := describeChanges(removedOnly); !slices.Equal(d, []string{"suppression_removed manual@example.com list:news"}) {
		t.Errorf("removals in list:news = %q", d)
	}

	// Resuming from a change's id reads what came after it.
	pos, err := db.ChangePosition(ctx, got[3].ID)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := waitChanges(t, db, pos, store.ChangeFilter{}, 2)
	if d := describeChanges(after); !slices.Equal(d, want[4:]) {
		t.Errorf("after change %d: %q, want %q", got[3].ID, d, want[4:])
	}
	if _, err := db.ChangePosition(ctx, got[5].ID+1000); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ChangePosition(unknown) = %v, want ErrNotFound", err)
	}
}

// TestChangesWaitForOlderTransactions: a change committed by a younger
// transaction is not read while an older transaction that may still
// write a change runs; once it commits, both are read, the older first,
// and nothing is read twice or skipped. (It holds back every feed of the
// cluster while it runs, which other tests wait out.)
func TestChangesWaitForOlderTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, url := dbtest.OpenURL(t, store.Options{})
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	start, err := db.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// An older transaction holds its transaction id, its change not yet
	// written.
	older, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer older.Rollback(ctx) //nolint:errcheck
	if _, err := older.Exec(ctx, `SELECT pg_current_xact_id()`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddSuppressions(ctx, []store.NewSuppression{manual("younger@example.com", "")}, "t", "api"); err != nil {
		t.Fatal(err)
	}
	got, pos := readAll(t, db, start, store.ChangeFilter{})
	if len(got) != 0 {
		t.Fatalf("read %q while an older transaction runs, want nothing yet", describeChanges(got))
	}
	if page, err := db.ReadChanges(ctx, pos, store.ChangeFilter{}, 10); err != nil || !page.Held {
		t.Errorf("ReadChanges() = %+v, %v, want the younger change held", page, err)
	}
	if _, err := older.Exec(ctx, `INSERT INTO changes (type, scope, address, reason, class, source, occurred_at)
		VALUES ('suppression_added', 'global', 'older@example.com', 'manual', 'none', 'api', now())`); err != nil {
		t.Fatal(err)
	}
	if err := older.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, pos = waitChanges(t, db, pos, store.ChangeFilter{}, 2)
	want := []string{"suppression_added older@example.com global", "suppression_added younger@example.com global"}
	if d := describeChanges(got); !slices.Equal(d, want) {
		t.Errorf("after the older transaction committed: %q, want %q", d, want)
	}
	if again, _ := readAll(t, db, pos, store.ChangeFilter{}); len(again) != 0 {
		t.Errorf("read again %q", describeChanges(again))
	}
}

// TestDeliveredBounceChangesCarryTheirEvent: a bounce's change and the
// suppression_added it causes keep only what is theirs (migration 00030);
// a claimed delivery still carries the address, as the event wrote it,
// and the event's status, reply code, source and provider.
func TestDeliveredBounceChangesCarryTheirEvent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	if _, err := db.CreateSubscription(ctx, store.NewSubscription{URL: "https://a.example/", Secret: "s", EventTypes: store.ChangeTypes()}); err != nil {
		t.Fatal(err)
	}
	ev := bounce("Mixed.Case@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now())
	ev.ReplyCode = "550"
	in := input("delivered-bounce", ev)
	in.Provider = "box"
	if _, err := db.Record(ctx, in); err != nil {
		t.Fatal(err)
	}
	jobs, err := db.ClaimDeliveries(ctx, 10, time.Minute)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("ClaimDeliveries() = %d jobs, %v; want the bounce and its suppression", len(jobs), err)
	}
	types := map[store.ChangeType]bool{}
	for _, j := range jobs {
		c := j.Change
		if c == nil {
			t.Fatalf("job %+v without its change", j)
		}
		types[c.Type] = true
		if c.Email != "Mixed.Case@example.com" || c.Reason != "user_unknown" || c.Class != "hard" || c.Status != "5.1.1" ||
			c.ReplyCode != "550" || c.Source != "http" || c.Provider != "box" || c.EventID == nil {
			t.Errorf("delivered %s change = %+v, want the event's fields", c.Type, c)
		}
	}
	if !types[store.ChangeBounce] || !types[store.ChangeSuppressionAdded] {
		t.Errorf("delivered change types %v", types)
	}
}

// TestDeliveriesFanOut: a change gets one delivery per enabled
// subscription that wants its type, tenant and scope; claims skip rows
// another deliverer holds, count attempts, and a settle after the lease
// ran out (the delivery claimed again) changes nothing.
func TestDeliveriesFanOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	subs := map[string]store.NewSubscription{
		"all":     {URL: "https://a.example/", Secret: "s", EventTypes: store.ChangeTypes()},
		"added":   {URL: "https://b.example/", Secret: "s", EventTypes: []store.ChangeType{store.ChangeSuppressionAdded}},
		"acme":    {URL: "https://c.example/", Secret: "s", EventTypes: store.ChangeTypes(), Tenant: "acme"},
		"news":    {URL: "https://d.example/", Secret: "s", EventTypes: store.ChangeTypes(), Scopes: []string{"list:news"}},
		"stopped": {URL: "https://e.example/", Secret: "s", EventTypes: store.ChangeTypes()},
	}
	ids := map[string]int64{}
	for name, n := range subs {
		s, err := db.CreateSubscription(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = s.ID
	}
	off := false
	if _, err := db.UpdateSubscription(ctx, ids["stopped"], store.SubscriptionPatch{Enabled: &off}, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddSuppressions(ctx, []store.NewSuppression{manual("a@example.com", "list:news"),
		manual("b@example.com", "tenant:acme")}, "ops", "api"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteSuppression(ctx, "a@example.com", "list:news", "ops", ""); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for name, id := range ids {
		ds, _, err := db.ListDeliveries(ctx, id, store.DeliveryFilter{})
		if err != nil {
			t.Fatal(err)
		}
		count[name] = len(ds)
	}
	want := map[string]int{"all": 3, "added": 2, "acme": 1, "news": 2, "stopped": 0}
	for name, n := range want {
		if count[name] != n {
			t.Errorf("subscription %s has %d deliveries, want %d", name, count[name], n)
		}
	}

	// Two deliverers claim at once: each delivery once.
	var mu sync.Mutex
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jobs, err := db.ClaimDeliveries(ctx, 100, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, j := range jobs {
				claimed[j.ID]++
				if j.Attempt != 1 || j.Change == nil || j.URL == "" {
					t.Errorf("job %+v: want attempt 1 with its change and URL", j)
				}
			}
		}()
	}
	wg.Wait()
	if len(claimed) != 8 {
		t.Errorf("claimed %d deliveries, want 8", len(claimed))
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("delivery %d claimed %d times", id, n)
		}
	}
	// Nothing is due until the lease runs out.
	if jobs, err := db.ClaimDeliveries(ctx, 100, time.Minute); err != nil || len(jobs) != 0 {
		t.Errorf("claim during the lease = %d, %v, want none", len(jobs), err)
	}
	// With a lease of nothing a delivery is due again at once: a second
	// claim is attempt 2, and the first attempt's settle comes too late
	// to count.
	if _, err := db.AddSuppressions(ctx, []store.NewSuppression{manual("c@example.com", "")}, "ops", "api"); err != nil {
		t.Fatal(err)
	}
	first, err := db.ClaimDeliveries(ctx, 10, 0)
	if err != nil || len(first) != 2 {
		t.Fatalf("claim = %d, %v, want the 2 deliveries of c@example.com", len(first), err)
	}
	second, err := db.ClaimDeliveries(ctx, 10, 0)
	if err != nil || len(second) != 2 || second[0].Attempt != 2 {
		t.Fatalf("claim again = %+v, %v, want the same 2 at attempt 2", second, err)
	}
	for _, j := range first {
		if err := db.SettleDelivery(ctx, j, store.DeliveryOutcome{Status: 200, State: store.DeliveryDelivered}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := db.GetDelivery(ctx, second[0].SubscriptionID, second[0].ID)
	if err != nil || d.State != store.DeliveryPending || d.Attempts != 2 {
		t.Errorf("after a late settle: %+v, %v, want pending at attempt 2", d, err)
	}
	for _, j := range second {
		if err := db.SettleDelivery(ctx, j, store.DeliveryOutcome{Status: 503, Error: "503 Service Unavailable",
			State: store.DeliveryDead}); err != nil {
			t.Fatal(err)
		}
	}
	d, err = db.GetDelivery(ctx, second[0].SubscriptionID, second[0].ID)
	if err != nil || d.State != store.DeliveryDead || d.LastStatus == nil || *d.LastStatus != 503 || d.NextAttemptAt != nil {
		t.Errorf("after the attempt's settle: %+v, %v, want dead after a 503", d, err)
	}
	s, err := db.GetSubscription(ctx, second[0].SubscriptionID)
	if err != nil || s.Dead != 1 || s.LastStatus == nil || *s.LastStatus != 503 || s.LastError == "" {
		t.Errorf("subscription = %+v, %v, want 1 dead delivery and the 503", s, err)
	}
	// Replayed, it is pending again with a fresh count of attempts.
	d, err = db.ReplayDelivery(ctx, d.SubscriptionID, d.ID)
	if err != nil || d.State != store.DeliveryPending || d.Attempts != 0 || d.NextAttemptAt == nil {
		t.Errorf("ReplayDelivery() = %+v, %v, want pending, due", d, err)
	}
	if _, err := db.ReplayDelivery(ctx, d.SubscriptionID+1000, d.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReplayDelivery(another subscription's) = %v, want ErrNotFound", err)
	}
}

// TestOneChangeRowPerSuppressingBounce: a bounce that puts its address
// on the list is one row of changes (migration 00032) that stands for
// two changes, the bounce and the suppression_added after it, with ids
// n and n+1: the feed reads both at every page size and from either as
// a position, type filters see each alone, a subscription gets each as
// its own delivery, and the retention reports both gone.
func TestOneChangeRowPerSuppressingBounce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	c := &clock{t: now}
	db, url := dbtest.OpenURL(t, store.Options{ChangesRetention: time.Hour, NowFunc: c.Now})
	addedOnly, err := db.CreateSubscription(ctx, store.NewSubscription{URL: "https://a.example/", Secret: "s",
		EventTypes: []store.ChangeType{store.ChangeSuppressionAdded}})
	if err != nil {
		t.Fatal(err)
	}
	start, err := db.ChangesHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Record(ctx, input("one-row", bounce("gone@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", now),
		bounce("full@example.com", parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", now))); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, merged int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE adds_suppression) FROM changes`).Scan(&rows, &merged); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || merged != 1 {
		t.Fatalf("changes rows = %d (%d adding a suppression), want 2 (1): one per bounce", rows, merged)
	}

	all, _ := waitChanges(t, db, start, store.ChangeFilter{}, 3)
	want := []string{"bounce gone@example.com global", "suppression_added gone@example.com global", "bounce full@example.com global"}
	if d := describeChanges(all); !slices.Equal(d, want) {
		t.Fatalf("changes =\n%q\nwant\n%q", d, want)
	}
	b, s := all[0], all[1]
	if s.ID != b.ID+1 || b.ExpiresAt != nil || b.Reason != "user_unknown" || s.Reason != "user_unknown" || s.Class != "hard" ||
		s.Status != "5.1.1" || s.EventID == nil || b.EventID == nil || *s.EventID != *b.EventID {
		t.Errorf("bounce %+v and its suppression %+v: want ids n and n+1, the event's fields", b, s)
	}
	// One change per page, from the start and from each change's id.
	pos := start
	for i := range all {
		page, err := db.ReadChanges(ctx, pos, store.ChangeFilter{}, 1)
		if err != nil || len(page.Changes) != 1 || page.Changes[0].ID != all[i].ID || page.Changes[0].Type != all[i].Type {
			t.Fatalf("page %d after %+v = %+v, %v; want %s", i, pos, page.Changes, err, want[i])
		}
		pos = page.Next
		if p, err := db.ChangePosition(ctx, all[i].ID); err != nil {
			t.Fatalf("ChangePosition(%d) = %v", all[i].ID, err)
		} else if rest, _ := readAll(t, db, p, store.ChangeFilter{}); !slices.Equal(describeChanges(rest), want[i+1:]) {
			t.Errorf("after change %d: %q, want %q", all[i].ID, describeChanges(rest), want[i+1:])
		}
	}
	// Type filters, also from just after the bounce of the row.
	bPos, err := db.ChangePosition(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		from  store.Position
		types []store.ChangeType
		want  []string
	}{
		{start, []store.ChangeType{store.ChangeBounce}, []string{want[0], want[2]}},
		{start, []store.ChangeType{store.ChangeSuppressionAdded}, want[1:2]},
		{bPos, []store.ChangeType{store.ChangeBounce}, want[2:]},
		{bPos, []store.ChangeType{store.ChangeSuppressionAdded}, want[1:2]},
	} {
		got, _ := readAll(t, db, c.from, store.ChangeFilter{Types: c.types})
		if d := describeChanges(got); !slices.Equal(d, c.want) {
			t.Errorf("types %v from %+v: %q, want %q", c.types, c.from, d, c.want)
		}
	}

	// The subscription wanting additions gets the second change alone.
	ds, _, err := db.ListDeliveries(ctx, addedOnly.ID, store.DeliveryFilter{})
	if err != nil || len(ds) != 1 || ds[0].ChangeID != s.ID || ds[0].ChangeType != store.ChangeSuppressionAdded {
		t.Fatalf("deliveries = %+v, %v; want one of change %d (suppression_added)", ds, err, s.ID)
	}
	jobs, err := db.ClaimDeliveries(ctx, 10, time.Minute)
	if err != nil || len(jobs) != 1 || jobs[0].Change == nil || jobs[0].Change.ID != s.ID ||
		jobs[0].Change.Type != store.ChangeSuppressionAdded || jobs[0].Change.Reason != "user_unknown" || jobs[0].Change.Email != "gone@example.com" {
		t.Fatalf("claimed %+v, %v; want the suppression_added change %d", jobs, err, s.ID)
	}
	if _, err := db.ReplayDelivery(ctx, addedOnly.ID, ds[0].ID); err != nil {
		t.Errorf("ReplayDelivery() = %v, want the change still kept", err)
	}

	// Past the retention both changes of the row are gone.
	c.Set(now.Add(3 * time.Hour))
	if _, err := db.CleanupExpired(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{b.ID, s.ID} {
		if _, err := db.ChangePosition(ctx, id); !errors.Is(err, store.ErrChangeGone) {
			t.Errorf("ChangePosition(%d) after the retention = %v, want ErrChangeGone", id, err)
		}
	}
}

// TestOneChangeRowMigratesDown: migrating 00032 down splits a row that
// adds a suppression into the two rows older binaries read, the
// suppression_added one under the id it had in the feed.
func TestOneChangeRowMigratesDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, conn, p := emptySchema(t)
	db, err := store.Open(ctx, url, store.Options{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Record(ctx, input("down", bounce("gone@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", time.Now()))); err != nil {
		t.Fatal(err)
	}
	all, _ := waitChanges(t, db, store.Position{}, store.ChangeFilter{}, 2)
	if len(all) != 2 {
		t.Fatalf("changes = %q, want the bounce and its suppression", describeChanges(all))
	}
	if _, err := p.DownTo(ctx, 31); err != nil {
		t.Fatalf("down to 31: %v", err)
	}
	rows, err := conn.Query(ctx, `SELECT id, type, reason, class FROM changes ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	var id int64
	var typ, reason, class string
	if _, err := pgx.ForEachRow(rows, []any{&id, &typ, &reason, &class}, func() error {
		got = append(got, fmt.Sprintf("%d %s %q %q", id, typ, reason, class))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("%d bounce \"\" \"\"", all[0].ID), fmt.Sprintf("%d suppression_added \"user_unknown\" \"hard\"", all[1].ID)}
	if !slices.Equal(got, want) {
		t.Errorf("rows after migrating down = %q, want %q", got, want)
	}
	if _, err := p.UpTo(ctx, 32); err != nil {
		t.Fatalf("up again: %v", err)
	}
}
