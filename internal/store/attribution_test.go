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

func TestScopeFor(t *testing.T) {
	t.Parallel()
	recs := store.SentRecords{
		{MessageKey: "tok-acme", Scope: "tenant:acme"},
		{MessageKey: "mid-news@acme", Scope: "tenant:acme/list:news"},
		{MessageKey: "mid-globex", Scope: "tenant:globex"},
		{MessageKey: "mid-both", Scope: "tenant:acme"},
		{MessageKey: "mid-both", Scope: "tenant:globex"},
		{MessageKey: "mid-lists", Scope: "tenant:acme/list:a"},
		{MessageKey: "mid-lists", Scope: "tenant:acme/list:b"},
		{MessageKey: "mid-rcpt", AddressKey: "a@example.com", Scope: "tenant:acme/list:a"},
		{MessageKey: "mid-rcpt", Scope: "tenant:acme/list:b"},
		{MessageKey: "mid-global", Scope: "global"},
	}
	for _, tc := range []struct {
		name string
		a    store.Attribution
		want string
	}{
		{name: "nothing known stays global", a: store.Attribution{}, want: "global"},
		{name: "an unmatched id stays global", a: store.Attribution{IDs: []string{"nope"}}, want: "global"},
		{name: "a bound channel without a match is its tenant", a: store.Attribution{Tenant: "acme"}, want: "tenant:acme"},
		{name: "a VERP token gives its tenant", a: store.Attribution{IDs: []string{"tok-acme"}}, want: "tenant:acme"},
		{name: "a Message-ID in angle brackets gives its list", a: store.Attribution{IDs: []string{"<mid-news@acme>"}}, want: "tenant:acme/list:news"},
		{name: "the VERP token wins over the Message-ID", a: store.Attribution{IDs: []string{"tok-acme", "mid-globex"}}, want: "tenant:acme"},
		{name: "an unmatched token leaves the Message-ID", a: store.Attribution{IDs: []string{"tok-none", "mid-globex"}}, want: "tenant:globex"},
		{name: "an id in two tenants attributes nothing", a: store.Attribution{IDs: []string{"mid-both"}}, want: "global"},
		{name: "an ambiguous id lets the next decide", a: store.Attribution{IDs: []string{"mid-both", "mid-news@acme"}}, want: "tenant:acme/list:news"},
		{name: "two lists of one tenant give the tenant", a: store.Attribution{IDs: []string{"mid-lists"}}, want: "tenant:acme"},
		{name: "a record for the recipient wins over one for any", a: store.Attribution{IDs: []string{"mid-rcpt"}}, want: "tenant:acme/list:a"},
		{name: "a bound channel ignores other tenants' records", a: store.Attribution{Tenant: "acme", IDs: []string{"mid-globex"}}, want: "tenant:acme"},
		{name: "a bound channel picks its own of two tenants", a: store.Attribution{Tenant: "globex", IDs: []string{"mid-both"}}, want: "tenant:globex"},
		{name: "a bound channel never goes global", a: store.Attribution{Tenant: "acme", IDs: []string{"mid-global"}}, want: "tenant:acme"},
		{name: "a named scope wins over records", a: store.Attribution{Scope: "tenant:acme/list:x", IDs: []string{"mid-globex"}}, want: "tenant:acme/list:x"},
		{name: "a named scope of another tenant is refused by a bound channel", a: store.Attribution{Tenant: "acme", Scope: "tenant:globex"}, want: "tenant:acme"},
		{name: "List-Id places a global event in the list", a: store.Attribution{ListID: "News <news.example.com>"}, want: "list:news.example.com"},
		{name: "List-Id places a tenant's event in its list", a: store.Attribution{IDs: []string{"tok-acme"}, ListID: "<News.Example.com>"}, want: "tenant:acme/list:news.example.com"},
		{name: "a reported list wins over List-Id", a: store.Attribution{IDs: []string{"mid-news@acme"}, ListID: "<other.example.com>"}, want: "tenant:acme/list:news"},
		{name: "an unusable List-Id is ignored", a: store.Attribution{ListID: "<a b>"}, want: "global"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := recs.ScopeFor(tc.a, "A@Example.com"); got != tc.want {
				t.Errorf("ScopeFor(%+v) = %q, want %q", tc.a, got, tc.want)
			}
		})
	}
}

func TestSentRecordsAndEventScopes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	db := dbtest.Open(t, store.Options{NowFunc: func() time.Time { return now }})
	if err := db.RecordSentMessages(ctx, "acme", []store.SentMessage{
		{MessageID: "<m1@acme>", Scope: "tenant:acme/list:news"},
		{MessageID: "tok1", Recipient: "b@example.com"},
		{MessageID: "<old@acme>", At: now.Add(-store.SentMessageRetention - time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordSentMessages(ctx, "acme", []store.SentMessage{{MessageID: "x", Scope: "tenant:globex"}}); !errors.Is(err, store.ErrForbiddenScope) {
		t.Errorf("RecordSentMessages(other tenant's scope) = %v, want ErrForbiddenScope", err)
	}
	if err := db.RecordSentMessages(ctx, "", []store.SentMessage{{MessageID: "y", Scope: "tenant:acme"}}); !errors.Is(err, store.ErrForbiddenScope) {
		t.Errorf("RecordSentMessages(untenanted into a tenant) = %v, want ErrForbiddenScope", err)
	}
	recs, err := db.SentRecords(ctx, []string{"m1@acme", "tok1", "<old@acme>"}, []string{"a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	// tok1 was reported for b only; the old one is past the retention.
	if len(recs) != 1 || recs[0] != (store.SentRecord{MessageKey: "m1@acme", Scope: "tenant:acme/list:news"}) {
		t.Fatalf("SentRecords() = %+v, want m1 in tenant:acme/list:news only", recs)
	}
	if recs, err = db.SentRecords(ctx, []string{"tok1"}, []string{"B@example.com"}); err != nil || len(recs) != 1 || recs[0].Scope != "tenant:acme" {
		t.Fatalf("SentRecords(tok1, b) = %+v, %v, want tenant:acme", recs, err)
	}

	// An event with its own scope is recorded and suppresses there; the
	// input's other events stay global.
	pol := store.DefaultPolicy()
	pol.ComplaintScope = store.ComplaintList
	if _, err := db.PutPolicy(ctx, pol, "test"); err != nil {
		t.Fatal(err)
	}
	complaint := parse.Event{Address: "c@example.com", Type: parse.EventComplaint, Class: parse.ClassComplaint,
		Reason: parse.ReasonComplaint, OccurredAt: now, Scope: "tenant:acme/list:news"}
	hard := bounce("d@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", now)
	hard.Scope = "tenant:acme/list:news"
	global := bounce("e@example.com", parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", now)
	if _, err := db.Record(ctx, input("scoped", complaint, hard, global)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr, scope string
		want        bool
	}{
		{"c@example.com", "tenant:acme/list:news", true},
		{"c@example.com", "tenant:acme", false},
		{"c@example.com", "global", false},
		{"d@example.com", "tenant:acme/list:other", true}, // a bounce suppresses on its tenant's own list
		{"d@example.com", "tenant:globex", false},
		{"d@example.com", "global", false},
		{"e@example.com", "tenant:globex", true},
	} {
		got, err := db.CheckSuppressions(ctx, []string{tc.addr}, tc.scope)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := got[tc.addr]; ok != tc.want {
			t.Errorf("CheckSuppressions(%s, %s) suppressed = %v, want %v", tc.addr, tc.scope, ok, tc.want)
		}
	}
	evs, _, err := db.ListEvents(ctx, store.EventFilter{Tenant: "acme", OnlyTenant: true})
	if err != nil || len(evs) != 2 {
		t.Fatalf("ListEvents(acme) = %d events, %v, want 2", len(evs), err)
	}
	for _, ev := range evs {
		if ev.Scope != "tenant:acme/list:news" {
			t.Errorf("event %s scope %q, want tenant:acme/list:news", ev.Address, ev.Scope)
		}
	}
}
