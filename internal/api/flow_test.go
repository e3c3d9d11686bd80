package api_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

func dsn(id, addr, status, diag string) []byte {
	return dsntest.DSN(id, dsntest.Rcpt{Address: addr, Status: status, Diagnostic: diag})
}

// TestBounceToSuppressionFlow is the README's curl flow.
func TestBounceToSuppressionFlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	raw := dsntest.DSN("flow",
		dsntest.Rcpt{Address: "User@Example.com", Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 <User@Example.com>: Recipient address rejected: User unknown"},
		dsntest.Rcpt{Address: "full@example.com", Status: "4.2.2", Diagnostic: "smtp; 452 4.2.2 Mailbox full"},
		dsntest.Rcpt{Address: "seq@example.com", Status: "5.5.1", Diagnostic: "smtp; 503 5.5.1 Error: need RCPT command"},
	)
	r := h.do("POST", "/v1/messages", "message/rfc822", raw, true)
	if r.status != 201 {
		t.Fatalf("POST /v1/messages = %d %s", r.status, r.body)
	}
	var m struct {
		store.Message
		Result parse.Report `json:"result"`
	}
	r.json(t, &m)
	if m.Kind != "bounce" || len(m.Result.Recipients) != 3 || len(m.EventIDs) != 3 {
		t.Fatalf("POST result kind %s, %d recipients, %d events; want bounce, 3, 3", m.Kind, len(m.Result.Recipients), len(m.EventIDs))
	}
	if loc := r.header.Get("Location"); loc != fmt.Sprintf("/v1/messages/%d", m.ID) {
		t.Errorf("Location %q", loc)
	}

	// The same bytes again: 200, same id, nothing new.
	again := h.do("POST", "/v1/messages", "message/rfc822", raw, true)
	var m2 store.Message
	again.json(t, &m2)
	if again.status != 200 || m2.ID != m.ID {
		t.Errorf("repost = %d id %d, want 200 id %d", again.status, m2.ID, m.ID)
	}
	var evs struct{ Items []store.Event }
	h.get("/v1/events").json(t, &evs)
	if len(evs.Items) != 3 {
		t.Errorf("events after repost = %d, want 3", len(evs.Items))
	}

	// The hard bounce is suppressed, compared case-insensitively.
	var sup store.Suppression
	sr := h.get("/v1/suppressions/user@example.com")
	if sr.status != 200 {
		t.Fatalf("GET suppression = %d %s", sr.status, sr.body)
	}
	sr.json(t, &sup)
	if sup.Reason != parse.ReasonUserUnknown || sup.Status != "5.1.1" || sup.Source != "http" || sup.FirstSeenAt.IsZero() || sup.LastSeenAt.IsZero() {
		t.Errorf("suppression = %+v", sup)
	}
	// The soft failure and the sender's own 503 are not.
	problemOf(t, h.get("/v1/suppressions/full@example.com"), 404)
	problemOf(t, h.get("/v1/suppressions/seq@example.com"), 404)
	var seqEvents struct{ Items []store.Event }
	h.get("/v1/events?recipient=seq@example.com").json(t, &seqEvents)
	if len(seqEvents.Items) != 1 || seqEvents.Items[0].Class != parse.ClassSender || seqEvents.Items[0].Reason != parse.ReasonProtocolError {
		t.Errorf("sender error events = %+v, want one sender/protocol_error event", seqEvents.Items)
	}

	// Delete reactivates and leaves a trace in the history.
	if d := h.do("DELETE", "/v1/suppressions/USER@example.com?note=fixed", "", nil, true); d.status != 204 {
		t.Fatalf("DELETE = %d %s", d.status, d.body)
	}
	problemOf(t, h.get("/v1/suppressions/user@example.com"), 404)
	var hist struct{ Items []store.Event }
	h.get("/v1/events?type=suppression_removed&recipient="+url.QueryEscape("user@example.com")).json(t, &hist)
	if len(hist.Items) != 1 || hist.Items[0].Note != "fixed" {
		t.Errorf("removal history = %+v", hist.Items)
	}

	var got store.Message
	h.get(fmt.Sprintf("/v1/messages/%d", m.ID)).json(t, &got)
	if got.SHA256 != m.SHA256 || got.ParseStatus != store.ParseParsed {
		t.Errorf("GET message = %+v", got)
	}
}

// clocks are the days the date-sensitive flows run on: today, a year
// ahead and a year back. A flow that passes on all three depends on no
// date, so it cannot pass today and fail next month.
var clocks = []struct {
	name  string
	years int
}{{"today", 0}, {"a year ahead", 1}, {"a year back", -1}}

// onEveryClock runs flow against a harness of its own on each clock.
func onEveryClock(t *testing.T, flow func(t *testing.T, h *harness)) {
	t.Helper()
	for _, c := range clocks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			now := func() time.Time { return time.Now().AddDate(c.years, 0, 0) }
			flow(t, newHarnessAt(t, api.Options{}, now))
		})
	}
}

// dsnAt is dsn dated at.
func dsnAt(at time.Time, id, addr, status, diag string) []byte {
	return dsntest.DSNAt(at, id, dsntest.Rcpt{Address: addr, Status: status, Diagnostic: diag})
}

func TestListPagingOverHTTP(t *testing.T) {
	t.Parallel()
	onEveryClock(t, func(t *testing.T, h *harness) {
		at := h.now().UTC().Truncate(time.Second)
		for i := range 5 {
			addr := fmt.Sprintf("p%d@example.com", i)
			h.do("POST", "/v1/messages", "message/rfc822", dsnAt(at, addr, addr, "5.1.1", ""), true)
		}
		seen := map[string]bool{}
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 5 {
				t.Fatal("paging does not end")
			}
			var page struct {
				Items      []store.Suppression
				NextCursor string `json:"next_cursor"`
			}
			h.get("/v1/suppressions?limit=2&cursor="+url.QueryEscape(cursor)).json(t, &page)
			for _, s := range page.Items {
				seen[s.Email] = true
			}
			if page.NextCursor == "" {
				break
			}
			cursor = page.NextCursor
		}
		if len(seen) != 5 {
			t.Errorf("paged %d suppressions, want 5", len(seen))
		}
		// The reports' own dates (two seconds before at) are kept as
		// occurred_at, and since/until filter on them.
		before, after := at.Add(-time.Hour).Format(time.RFC3339), at.Add(time.Hour).Format(time.RFC3339)
		for _, tt := range []struct {
			query string
			want  int
		}{
			{"since=" + before, 5},
			{"since=" + after, 0},
			{"until=" + after, 5},
			{"until=" + before, 0},
		} {
			var evs struct{ Items []store.Event }
			h.get("/v1/events?type=bounce&limit=10&"+tt.query).json(t, &evs)
			if len(evs.Items) != tt.want {
				t.Errorf("events %s = %d, want %d", tt.query, len(evs.Items), tt.want)
			}
			for _, e := range evs.Items {
				if !e.OccurredAt.Equal(at.Add(-2 * time.Second)) {
					t.Errorf("event occurred_at %s, want the report's %s", e.OccurredAt, at.Add(-2*time.Second))
				}
			}
		}
	})
}

func TestCodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	var e parse.Explanation
	h.get("/v1/codes/5.1.3").json(t, &e)
	if e.Reason != parse.ReasonBadSyntax || !e.Suppress || e.MeaningES == "" {
		t.Errorf("explain 5.1.3 = %+v", e)
	}
	h.get("/v1/codes/503").json(t, &e)
	if e.Class != parse.ClassSender || e.Suppress {
		t.Errorf("explain 503 = %+v, want sender, no suppression", e)
	}
	var list struct{ Items []parse.CodeInfo }
	h.get("/v1/codes").json(t, &list)
	if len(list.Items) < 60 {
		t.Errorf("catalog has %d codes", len(list.Items))
	}
}
