package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// TestUnverifiedEventsNeverSuppress: an unverified hard bounce or
// complaint is recorded, marked, and suppresses nothing, through Record
// and through a batch; its soft twin counts towards no threshold.
func TestUnverifiedEventsNeverSuppress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	input := func(id string, evs ...parse.Event) store.Input {
		return store.Input{Source: "http", ContentType: "message/rfc822", Raw: []byte(id), Status: store.ParseParsed, Kind: "bounce", Events: evs}
	}
	hard := parse.Event{Address: "u1@example.com", Type: parse.EventBounce, Class: parse.ClassHard, Reason: parse.ReasonUserUnknown, Unverified: true}
	complaint := parse.Event{Address: "u2@example.com", Type: parse.EventComplaint, Class: parse.ClassComplaint, Reason: parse.ReasonComplaint, Unverified: true}
	if _, err := db.Record(ctx, input("one", hard)); err != nil {
		t.Fatal(err)
	}
	for _, r := range db.RecordBatch(ctx, []store.Input{input("two", complaint), input("three", hard)}) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for i := range 5 {
		soft := parse.Event{Address: "u3@example.com", Type: parse.EventBounce, Class: parse.ClassSoft, Reason: parse.ReasonMailboxFull,
			Unverified: true, OccurredAt: time.Now().Add(-time.Duration(i) * 25 * time.Hour)}
		if _, err := db.Record(ctx, input("soft"+string(rune('a'+i)), soft)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := db.CountSuppressions(ctx, store.SuppressionFilter{}); n != 0 {
		t.Errorf("%d suppressions from unverified events, want 0", n)
	}
	evs, _, err := db.ListEvents(ctx, store.EventFilter{})
	if err != nil || len(evs) != 8 {
		t.Fatalf("%d events, %v; want 8", len(evs), err)
	}
	for _, ev := range evs {
		if !ev.Unverified {
			t.Errorf("event %+v not marked unverified", ev)
		}
	}
}
