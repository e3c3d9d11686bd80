package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// BenchmarkSenderHealth reads the sender-side failures of 30 days (day
// buckets) and of the last day (hour buckets) among 500,000 events, 1% of
// them sender-side, and counts events as ?total=true does.
func BenchmarkSenderHealth(b *testing.B) {
	ctx := context.Background()
	url := dbtest.URL(b)
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	now := time.Now().UTC()
	// Every 100th event is sender-side, from one of 50 reporting MTAs.
	if _, err := conn.Exec(ctx, `
		INSERT INTO events (address_key, type, class, reason, status, reply_code, reporting_mta, source, provider, occurred_at)
		SELECT 'u' || i || '@example.com', 'bounce',
			CASE WHEN i % 100 = 0 THEN 'sender' ELSE 'hard' END,
			CASE WHEN i % 100 = 0 THEN (ARRAY['auth_required', 'protocol_error', 'auth_failure'])[1 + i % 3] ELSE 'user_unknown' END,
			CASE WHEN i % 100 = 0 THEN '5.7.0' ELSE '5.1.1' END, '550', 'mx' || (i % 50) || '.example.net', 'http', '',
			$1::timestamptz - (i % 43200) * interval '1 minute'
		FROM generate_series(1, 500000) i`, now); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE events`); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		q    store.SenderHealthQuery
	}{
		{"30 days by day", store.SenderHealthQuery{Since: now.Add(-30 * 24 * time.Hour), Until: now, Bucket: store.BucketDay}},
		{"1 day by hour", store.SenderHealthQuery{Since: now.Add(-24 * time.Hour), Until: now, Bucket: store.BucketHour}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				h, err := db.SenderHealth(ctx, bc.q)
				if err != nil || h.Total == 0 {
					b.Fatal(h.Total, err)
				}
			}
		})
	}
	for _, bc := range []struct {
		name string
		f    store.EventFilter
	}{
		{"count all", store.EventFilter{}},
		{"count class sender", store.EventFilter{Class: parse.ClassSender}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if n, err := db.CountEvents(ctx, bc.f); err != nil || n == 0 {
					b.Fatal(n, err)
				}
			}
		})
	}
}
