package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// TestVaguerHardBounceKeepsTheSpecificReason: once an address is
// suppressed with a reason and status that say why, a later hard bounce
// that says less (reason other, no status, or a provider's X.0.0) is
// counted on the entry and changes neither; one that says more replaces
// a vague entry.
func TestVaguerHardBounceKeepsTheSpecificReason(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	t0 := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	hard := func(addr string, reason parse.Reason, status parse.Status, diag string, at time.Time) parse.Event {
		ev := bounce(addr, parse.ClassHard, reason, status, at)
		ev.Diagnostic = diag
		return ev
	}
	steps := []struct {
		name string
		ev   parse.Event
	}{
		{"specific", hard("kept@example.com", parse.ReasonUserUnknown, "5.1.1", "550 5.1.1 no such user", t0)},
		{"vaguer", hard("kept@example.com", parse.ReasonOther, "", "Postmark deactivated the address after a hard bounce", t0.Add(time.Minute))},
		{"provider code", hard("kept@example.com", parse.ReasonOther, "5.0.0", "dropped by SendGrid: Bounced Address", t0.Add(2*time.Minute))},
		{"vague first", hard("grows@example.com", parse.ReasonOther, "", "hard bounce", t0)},
		{"then specific", hard("grows@example.com", parse.ReasonDomainUnknown, "5.1.2", "550 5.1.2 no such domain", t0.Add(time.Minute))},
		{"then vague again", hard("grows@example.com", parse.ReasonOther, "5.0.0", "failed", t0.Add(2*time.Minute))},
	}
	for i, st := range steps {
		if _, err := db.Record(ctx, input(st.name, st.ev)); err != nil {
			t.Fatalf("step %d (%s): %v", i, st.name, err)
		}
	}
	for _, tt := range []struct {
		addr   string
		reason parse.Reason
		status string
		diag   string
	}{
		{"kept@example.com", parse.ReasonUserUnknown, "5.1.1", "550 5.1.1 no such user"},
		{"grows@example.com", parse.ReasonDomainUnknown, "5.1.2", "550 5.1.2 no such domain"},
	} {
		s, err := db.GetSuppression(ctx, tt.addr, "")
		if err != nil {
			t.Fatalf("GetSuppression(%s) = %v", tt.addr, err)
		}
		if s.Reason != tt.reason || s.Status != tt.status || s.Diagnostic != tt.diag || s.Class != parse.ClassHard || s.EventCount != 3 {
			t.Errorf("GetSuppression(%s) = reason %s, status %q, diagnostic %q, class %s, %d events; want %s, %q, %q, hard, 3",
				tt.addr, s.Reason, s.Status, s.Diagnostic, s.Class, s.EventCount, tt.reason, tt.status, tt.diag)
		}
		if !s.LastSeenAt.Equal(t0.Add(2 * time.Minute)) {
			t.Errorf("%s: last seen %v, want the last bounce's time", tt.addr, s.LastSeenAt)
		}
	}
}

// TestSentEventChangesNoCounter: a message a provider accepted for
// delivery (sent) is recorded, but unlike a delivery it does not reset
// the soft counter, suppresses nothing, and counts as accepted volume.
func TestSentEventChangesNoCounter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	t0 := time.Now().Add(-72 * time.Hour).UTC().Truncate(time.Hour)
	addr := "accepted@example.com"
	for i := range 2 {
		if _, err := db.Record(ctx, input("soft-"+string(rune('a'+i)), bounce(addr, parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2", t0.Add(time.Duration(i)*24*time.Hour)))); err != nil {
			t.Fatal(err)
		}
	}
	sent := parse.SentEvent(addr, "")
	sent.OccurredAt = t0.Add(25 * time.Hour)
	out, err := db.Record(ctx, input("sent", sent))
	if err != nil || out.Recorded != 1 || out.SuppressionsAdded != 0 {
		t.Fatalf("Record(sent) = %+v, %v; want one event, no suppression", out, err)
	}
	r, err := db.GetRecipient(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.SoftCount != 2 || r.LastDeliveryAt != nil {
		t.Errorf("after a sent event: soft_count %d, last delivery %v; want 2 and none", r.SoftCount, r.LastDeliveryAt)
	}
	if r.LastEventType == string(parse.EventSent) {
		t.Errorf("after a sent event: last event type %q, want the bounce's", r.LastEventType)
	}
	// Nor does it make state for an address that has none.
	fresh := parse.SentEvent("new@example.com", "")
	fresh.OccurredAt = t0
	if _, err := db.Record(ctx, input("sent-fresh", fresh)); err != nil {
		t.Fatal(err)
	}
	if r, err := db.GetRecipient(ctx, "new@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRecipient after only a sent event = %+v, %v; want no state", r, err)
	}
	evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: addr, Type: parse.EventSent})
	if err != nil || len(evs) != 1 {
		t.Errorf("ListEvents(type sent) = %d events, %v; want 1", len(evs), err)
	}
	rows, err := db.Stats(ctx, store.StatsQuery{Since: t0.Add(-time.Hour), Until: t0.Add(72 * time.Hour), Bucket: store.BucketDay, GroupBy: store.GroupNone, Groups: 10})
	if err != nil {
		t.Fatal(err)
	}
	var accepted, sentVolume int64 // two soft failures, two sent events
	for _, row := range rows {
		accepted += row.Accepted
		sentVolume += row.Sent
	}
	if accepted != 2 || sentVolume != 4 {
		t.Errorf("stats: accepted %d, sent %d; want 2 and 4 (two failures and two acceptances observed)", accepted, sentVolume)
	}
}
