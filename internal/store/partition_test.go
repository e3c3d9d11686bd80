package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
	"github.com/bounced/bounced/migrations"
)

func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func partName(m time.Time) string { return fmt.Sprintf("events_y%04dm%02d", m.Year(), int(m.Month())) }

// webhookInput is a webhook body holding one event with a provider id.
func webhookInput(raw, id, addr string, class parse.Class, reason parse.Reason) store.Input {
	ev := bounce(addr, class, reason, "5.1.1", time.Now())
	if class == parse.ClassSoft {
		ev.Status = "4.2.2"
	}
	ev.ProviderEventID = id
	in := input(raw, ev)
	in.Source, in.Provider = "webhook", "ses"
	return in
}

func dbNow(t *testing.T, conn *pgx.Conn) time.Time {
	t.Helper()
	var now time.Time
	if err := conn.QueryRow(context.Background(), `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

func partitionNames(t *testing.T, db *store.DB) []string {
	t.Helper()
	parts, err := db.EventsPartitions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range parts {
		names = append(names, p.Name)
	}
	return names
}

func TestPartitionsOfAFreshSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	db, err := store.Open(ctx, url, store.Options{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	parts, err := db.EventsPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 2 || parts[0].Name != "events_legacy" || !parts[0].From.IsZero() || parts[0].To.Day() != 1 ||
		parts[0].To.Hour() != 0 || !parts[1].Default {
		t.Fatalf("partitions of a fresh schema = %+v, want events_legacy up to a month start (UTC) and the default", parts)
	}
	legacyEnd := parts[0].To
	m, err := db.MaintainPartitions(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The months up to PartitionsAheadDefault after this one, less those
	// the legacy partition covers.
	var want []string
	for i := 0; i <= store.PartitionsAheadDefault; i++ {
		if month := monthOf(dbNow(t, conn)).AddDate(0, i, 0); !month.Before(legacyEnd) {
			want = append(want, partName(month))
		}
	}
	if !slices.Equal(m.Created, want) || m.Moved != 0 || m.Skipped {
		t.Errorf("MaintainPartitions() = %+v, want created %v", m, want)
	}
	if m, err := db.MaintainPartitions(ctx, 0); err != nil || len(m.Created) != 0 {
		t.Errorf("second MaintainPartitions() = %+v, %v; want nothing to do", m, err)
	}
	// Another replica holding the lock makes this one skip.
	lock, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(0x626f756e63656438)); err != nil {
		t.Fatal(err)
	}
	if m, err := db.MaintainPartitionsAt(ctx, dbNow(t, conn).AddDate(0, 6, 0), 1); err != nil || !m.Skipped || len(m.Created) != 0 {
		t.Errorf("MaintainPartitions() while another replica holds the lock = %+v, %v; want skipped", m, err)
	}
}

// TestRetentionAcrossPartitions steps the clock through months: a row the
// default partition caught moves into the partition made for it, a
// provider event stays refused while its event was created this month or
// last, and the retention drops old partitions and raw inputs but never a
// suppression.
func TestRetentionAcrossPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	db, err := store.Open(ctx, url, store.Options{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first := monthOf(dbNow(t, conn))
	m3, m6, m9 := first.AddDate(0, 3, 0), first.AddDate(0, 6, 0), first.AddDate(0, 9, 0)

	record := func(in store.Input) store.Outcome {
		t.Helper()
		out, err := db.Record(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	old := record(webhookInput("old", "old-1", "old@example.com", parse.ClassHard, parse.ReasonUserUnknown))
	mid := record(webhookInput("mid", "mid-1", "mid@example.com", parse.ClassSoft, parse.ReasonMailboxFull))
	record(webhookInput("new", "new-1", "new@example.com", parse.ClassSoft, parse.ReasonMailboxFull))

	if _, err := db.MaintainPartitionsAt(ctx, m3, 0); err != nil {
		t.Fatal(err)
	}
	// Age the first two inputs: "old" into m3's partition, "mid" into m6,
	// which has none yet, so the default partition takes it.
	age := func(rawID int64, at time.Time) {
		t.Helper()
		for _, q := range []string{
			`UPDATE events SET created_at = $2 WHERE raw_id = $1`,
			`UPDATE raw_messages SET received_at = $2 WHERE id = $1`,
		} {
			if _, err := conn.Exec(ctx, q, rawID, at); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	age(old.Message.ID, m3.Add(24*time.Hour))
	age(mid.Message.ID, m6.Add(24*time.Hour))
	partitionOf := func(rawID int64) string {
		t.Helper()
		var name string
		if err := conn.QueryRow(ctx, `SELECT tableoid::regclass::text FROM events WHERE raw_id = $1`, rawID).Scan(&name); err != nil {
			t.Fatalf("event of raw %d: %v", rawID, err)
		}
		return name
	}
	if got := partitionOf(old.Message.ID); got != partName(m3) {
		t.Errorf("aged event in %s, want %s", got, partName(m3))
	}
	if got := partitionOf(mid.Message.ID); got != "events_default" {
		t.Errorf("event beyond the partitions in %s, want events_default", got)
	}

	m, err := db.MaintainPartitionsAt(ctx, m6, 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Moved != 1 || !slices.Contains(m.Created, partName(m6)) {
		t.Errorf("MaintainPartitions() at m6 = %+v, want %s made and 1 row moved out of the default", m, partName(m6))
	}
	if got := partitionOf(mid.Message.ID); got != partName(m6) {
		t.Errorf("moved event in %s, want %s", got, partName(m6))
	}

	// The same provider event again, in a new body: refused while its
	// event was created this month or last (here: now, in the partition
	// new rows go to); "old" was aged beyond that, and counts again.
	if out := record(webhookInput("new, resent", "new-1", "new@example.com", parse.ClassSoft, parse.ReasonMailboxFull)); !out.Created || out.Recorded != 0 {
		t.Errorf("replayed provider event: %+v, want a new raw row and no event", out)
	}
	if out := record(webhookInput("old, resent", "old-1", "old@example.com", parse.ClassHard, parse.ReasonUserUnknown)); out.Recorded != 1 {
		t.Errorf("provider event created beyond last month, sent again: recorded %d, want 1", out.Recorded)
	}

	// Keep 3 months before m9: m6 onwards stays.
	m, err = db.MaintainPartitionsAt(ctx, m9, 3)
	if err != nil {
		t.Fatal(err)
	}
	wantDropped := []string{"events_legacy", partName(m3), partName(first.AddDate(0, 4, 0)), partName(first.AddDate(0, 5, 0))}
	if !slices.Equal(m.Dropped, wantDropped) || m.RawDeleted != 4 {
		t.Errorf("retention at m9 = %+v, want dropped %v, 4 raw inputs (old, new, the two resends)", m, wantDropped)
	}
	names := partitionNames(t, db)
	if slices.Contains(names, partName(m3)) || !slices.Contains(names, partName(m6)) || !slices.Contains(names, "events_default") {
		t.Errorf("partitions after the retention = %v", names)
	}
	var events, raws int
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM raw_messages)`).Scan(&events, &raws); err != nil {
		t.Fatal(err)
	}
	if events != 1 || raws != 1 {
		t.Errorf("after the retention %d events and %d raw inputs remain, want mid's 1 and 1", events, raws)
	}
	// A suppression outlives the events that made it.
	if _, err := db.GetSuppression(ctx, "old@example.com", store.GlobalScope); err != nil {
		t.Errorf("suppression of old@example.com after its event was dropped: %v", err)
	}
	// New rows still have a home (the real clock's month has no partition
	// any more: the default takes them), stay readable, and their provider
	// ids refuse replays there too.
	if out := record(webhookInput("old, resent after a year", "old-1", "old@example.com", parse.ClassHard, parse.ReasonUserUnknown)); out.Recorded != 1 {
		t.Errorf("provider event whose event the retention dropped recorded %d events, want 1", out.Recorded)
	}
	if out := record(webhookInput("old, resent once more", "old-1", "old@example.com", parse.ClassHard, parse.ReasonUserUnknown)); out.Recorded != 0 {
		t.Errorf("replay of a provider event in the default partition recorded %d events, want 0", out.Recorded)
	}
	if evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: "old@example.com", Limit: 10}); err != nil || len(evs) != 1 {
		t.Errorf("ListEvents after the retention = %d events, %v; want the re-recorded one", len(evs), err)
	}
}

// TestMigrationKeepsProviderKeys upgrades a database holding webhook
// events from the unpartitioned schema: the events stay, in the legacy
// partition, and their provider ids keep refusing replays.
func TestMigrationKeepsProviderKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, conn, p := emptySchema(t)
	if _, err := p.UpTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `
		INSERT INTO raw_messages (sha256, source, provider, content_type, body, parse_status)
			VALUES ('\x01', 'webhook', 'ses', 'application/json', 'x', 'parsed');
		INSERT INTO events (raw_id, address, address_key, domain, type, class, reason, source, provider,
			provider_event_id, occurred_at)
			VALUES (1, 'k@example.com', 'k@example.com', 'example.com', 'bounce', 'soft', 'mailbox_full', 'webhook', 'ses', 'before-8', now())`); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, url, store.Options{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Migrate(ctx)
	if err != nil || !slices.Contains(res.Applied, "00008_partitions.sql") {
		t.Fatalf("Migrate() = %+v, %v; want 00008 applied", res, err)
	}
	var where string
	if err := conn.QueryRow(ctx, `SELECT tableoid::regclass::text FROM events WHERE provider_event_id = 'before-8'`).Scan(&where); err != nil || where != "events_legacy" {
		t.Errorf("pre-upgrade event in %q (%v), want events_legacy", where, err)
	}
	out, err := db.Record(ctx, webhookInput("resent after the upgrade", "before-8", "k@example.com", parse.ClassSoft, parse.ReasonMailboxFull))
	if err != nil || out.Recorded != 0 {
		t.Errorf("replay of a pre-upgrade provider event = %+v, %v; want nothing recorded", out, err)
	}
	out, err = db.Record(ctx, webhookInput("a new one", "after-8", "k@example.com", parse.ClassSoft, parse.ReasonMailboxFull))
	if err != nil || out.Recorded != 1 || out.Message.EventIDs[0] <= 1 {
		t.Errorf("new provider event after the upgrade = %+v, %v; want one event with an id after the old ones", out, err)
	}
	// And back down: the flat table and its unique index return.
	if _, err := p.DownTo(ctx, 7); err != nil {
		t.Fatalf("down to 7: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM events`).Scan(&n); err != nil || n != 2 {
		t.Errorf("events after migrating down = %d, %v; want 2", n, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO events (address, address_key, domain, type, class, reason, source, provider,
		provider_event_id, occurred_at) VALUES ('k@example.com', 'k@example.com', 'example.com', 'bounce', 'soft',
		'mailbox_full', 'webhook', 'ses', 'after-8', now())`); err == nil {
		t.Error("after migrating down the unique provider index accepts a duplicate")
	}
}

var _ = stdlib.GetDefaultDriver // registers the "pgx" database/sql driver

// emptySchema gives a test database whose schema is empty, a connection
// to it and a goose provider of bounced's migrations over it, so a test
// can migrate up to a version, put rows in the old schema's shape and
// migrate on.
func emptySchema(t *testing.T) (string, *pgx.Conn, *goose.Provider) {
	t.Helper()
	ctx := context.Background()
	url := dbtest.URL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	sqlDB, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	return url, conn, p
}
