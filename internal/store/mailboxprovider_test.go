package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/mailboxprovider"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// TestStatsByMailboxProvider: events group by their domain's mailbox
// provider, from the built-in table (gmail.com, hotmail.com), a stored
// lookup (corp.example → microsoft, own.example → other) or neither
// (unknown while lookups run); volume reported for a domain is its
// provider's denominator.
func TestStatsByMailboxProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	peeked := map[string]mailboxprovider.Provider{}
	db := dbtest.Open(t, store.Options{MailboxProviderFunc: func(d string) mailboxprovider.Provider {
		return peeked[d] // read-only here: set before any event
	}})
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)
	for d, p := range map[string]mailboxprovider.Provider{"corp.example": mailboxprovider.Microsoft, "own.example": mailboxprovider.Other} {
		if err := db.SaveMailboxProvider(ctx, d, p); err != nil {
			t.Fatal(err)
		}
	}
	events := []parse.Event{
		bounce("a@gmail.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", h0.Add(time.Minute)),
		bounce("b@gmail.com", parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", h0.Add(2*time.Minute)),
		{Address: "c@gmail.com", Type: parse.EventDelivery, Class: parse.ClassNone, Reason: parse.ReasonDelivered, OccurredAt: h0.Add(3 * time.Minute)},
		bounce("d@corp.example", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", h0.Add(4*time.Minute)),
		bounce("e@hotmail.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", h0.Add(5*time.Minute)),
		bounce("f@own.example", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", h0.Add(6*time.Minute)),
		bounce("g@unsaved.example", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", h0.Add(7*time.Minute)),
	}
	for i, ev := range events {
		if _, err := db.Record(ctx, input(fmt.Sprintf("mbp-%d", i), ev)); err != nil {
			t.Fatal(err)
		}
	}
	counts := []store.SentCount{{At: h0, Domain: "gmail.com", Count: 40}, {At: h0, Domain: "googlemail.com", Count: 60},
		{At: h0, Domain: "corp.example", Count: 10}, {At: h0, Count: 1000}}
	if _, err := db.RecordSent(ctx, "", "", counts); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Stats(ctx, store.StatsQuery{Since: h0, Until: h0.Add(time.Hour), Bucket: store.BucketHour, GroupBy: store.GroupMailboxProvider})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, fmt.Sprintf("%s sent=%d/%s d=%d bounced=%d rate=%s", r.Key, r.Sent, r.SentBasis, r.Delivered, r.Bounced, rateOf(r.BounceRate)))
	}
	want := []string{
		"google sent=100/reported d=1 bounced=2 rate=0.02",
		"microsoft sent=10/reported d=0 bounced=2 rate=0.2", // corp.example's report; hotmail.com's events
		"other sent=1/observed d=0 bounced=1 rate=1",
		"unknown sent=1/observed d=0 bounced=1 rate=1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Stats(by mailbox_provider) =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Without lookups, a domain the table does not know is other.
	plain := dbtest.Open(t, store.Options{})
	if _, err := plain.Record(ctx, input("mbp-plain", events[6])); err != nil {
		t.Fatal(err)
	}
	rows, err = plain.Stats(ctx, store.StatsQuery{Since: h0, Until: h0.Add(time.Hour), Bucket: store.BucketHour, GroupBy: store.GroupMailboxProvider})
	if err != nil || len(rows) != 1 || rows[0].Key != "other" {
		t.Errorf("Stats(by mailbox_provider, no lookups) = %+v, %v, want one other row", rows, err)
	}
}

func rateOf(r *float64) string {
	if r == nil {
		return "null"
	}
	return fmt.Sprint(*r)
}

// TestSaveMailboxProvider: an answer is stored once, replaced when it
// changes, and never Unknown or free text.
func TestSaveMailboxProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	clock := func() time.Time { return now }
	db := dbtest.Open(t, store.Options{NowFunc: func() time.Time { return clock() }})
	for _, p := range []mailboxprovider.Provider{mailboxprovider.Unknown, "free text", ""} {
		if err := db.SaveMailboxProvider(ctx, "x.example", p); err == nil {
			t.Errorf("SaveMailboxProvider(%q) = nil, want an error", p)
		}
	}
	h0 := now.Add(-time.Hour)
	stats := func() string {
		t.Helper()
		rows, err := db.Stats(ctx, store.StatsQuery{Since: h0, Until: now.Add(time.Hour), Bucket: store.BucketDay, GroupBy: store.GroupMailboxProvider})
		if err != nil || len(rows) == 0 {
			t.Fatalf("Stats() = %v, %v", rows, err)
		}
		return rows[0].Key
	}
	if _, err := db.Record(ctx, input("save-1", bounce("a@x.example", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", now))); err != nil {
		t.Fatal(err)
	}
	if got := stats(); got != "other" {
		t.Errorf("before any lookup: %s, want other", got)
	}
	for _, p := range []mailboxprovider.Provider{mailboxprovider.Google, mailboxprovider.Google, mailboxprovider.Zoho} {
		if err := db.SaveMailboxProvider(ctx, "x.example", p); err != nil {
			t.Fatal(err)
		}
		if got := stats(); got != string(p) {
			t.Errorf("after saving %s: %s", p, got)
		}
	}
}

// TestEventsMetricMailboxProvider: bounced_events_total carries the
// recipient's mailbox provider, only ever a value of the fixed table.
func TestEventsMetricMailboxProvider(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	db := dbtest.Open(t, store.Options{Registerer: reg, MailboxProviderFunc: func(d string) mailboxprovider.Provider {
		switch d {
		case "corp.example":
			return mailboxprovider.Microsoft
		case "weird.example":
			return "free text from a bad resolver"
		}
		return mailboxprovider.Unknown
	}})
	now := time.Now()
	for i, addr := range []string{"a@corp.example", "b@corp.example", "c@weird.example", "d@new.example"} {
		if _, err := db.Record(ctx, input(fmt.Sprintf("metric-%d", i), bounce(addr, parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", now))); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP bounced_events_total Events recorded from reports and webhooks, by type, class, reason, source, provider (the ESP or configured mailbox) and mailbox_provider (the recipient's: google, microsoft, yahoo..., other, unknown).
# TYPE bounced_events_total counter
bounced_events_total{class="hard",mailbox_provider="microsoft",provider="",reason="user_unknown",source="http",type="bounce"} 2
bounced_events_total{class="hard",mailbox_provider="unknown",provider="",reason="user_unknown",source="http",type="bounce"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "bounced_events_total"); err != nil {
		t.Error(err)
	}
}

// TestMailboxProviders: the stored answers come back, most recent first,
// at most limit of them.
func TestMailboxProviders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	at := now
	db := dbtest.Open(t, store.Options{NowFunc: func() time.Time { return at }})
	for i, d := range []string{"a.example", "b.example", "c.example"} {
		at = now.Add(time.Duration(i) * time.Minute)
		if err := db.SaveMailboxProvider(ctx, d, mailboxprovider.Known()[i]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.MailboxProviders(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Domain != "c.example" || got[0].Provider != mailboxprovider.Known()[2] || got[1].Domain != "b.example" ||
		!got[0].ResolvedAt.Equal(now.Add(2*time.Minute)) {
		t.Errorf("MailboxProviders(2) = %+v, want c.example then b.example", got)
	}
}
