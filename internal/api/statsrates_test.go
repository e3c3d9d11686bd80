package api_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// TestStatsRatesOverHTTP: a rate is null without a denominator for the
// same group and always within 0..1. Once complaint_rate was 2.0 with no
// sent volume, and an hour's rate was every domain's bounces over the
// volume one domain reported.
func TestStatsRatesOverHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	base := h.now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	hA, hB, hC := base, base.Add(time.Hour), base.Add(2*time.Hour)
	ev := func(addr string, typ parse.EventType, class parse.Class, reason parse.Reason, at time.Time) parse.Event {
		return parse.Event{Address: addr, Type: typ, Class: class, Reason: reason, OccurredAt: at.Add(10 * time.Minute)}
	}
	hard := func(addr string, at time.Time) parse.Event {
		e := ev(addr, parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown, at)
		e.Status = "5.1.1"
		return e
	}
	// hour A: one delivery, two complaints, nothing reported sent.
	recordEvents(t, h, "webhook", "ses", "",
		ev("d@x.example", parse.EventDelivery, parse.ClassNone, parse.ReasonDelivered, hA),
		ev("c1@x.example", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint, hA),
		ev("c2@x.example", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint, hA))
	// hour B: 10 reported sent to gmail.com only; bounces at gmail.com and elsewhere.
	sent := func(body string) {
		t.Helper()
		if r := h.do("POST", "/v1/sent", "application/json", []byte(body), true); r.status != 202 {
			t.Fatalf("POST /v1/sent %s = %d %s", body, r.status, r.body)
		}
	}
	sent(fmt.Sprintf(`{"at":%q,"count":10,"domain":"gmail.com"}`, hB.Add(time.Minute).Format(time.RFC3339)))
	recordEvents(t, h, "webhook", "ses", "", hard("g@gmail.com", hB), hard("o1@other.example", hB),
		hard("o2@other.example", hB), hard("o3@other.example", hB))
	// hour C: a total of 2 reported, 5 bounced.
	sent(fmt.Sprintf(`{"at":%q,"count":2}`, hC.Add(time.Minute).Format(time.RFC3339)))
	var five []parse.Event
	for i := range 5 {
		e := ev(fmt.Sprintf("s%d@y.example", i), parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull, hC)
		e.Status = "4.2.2"
		five = append(five, e)
	}
	recordEvents(t, h, "webhook", "ses", "", five...)

	window := "since=" + hA.Format(time.RFC3339) + "&until=" + hC.Add(time.Hour).Format(time.RFC3339)
	stats := func(query string) []map[string]any {
		t.Helper()
		var st struct{ Items []map[string]any }
		h.get("/v1/stats?"+window+query).json(t, &st)
		for _, row := range st.Items {
			for _, name := range []string{"bounce_rate", "complaint_rate"} {
				if v, ok := row[name].(float64); row[name] != nil && (!ok || v < 0 || v > 1) {
					t.Errorf("stats%s row %v: %s %v outside 0..1", query, row, name, row[name])
				}
			}
		}
		return st.Items
	}
	line := func(row map[string]any) string {
		return fmt.Sprintf("%v %v %v/%v bounce=%v complaint=%v", strings.TrimSuffix(fmt.Sprint(row["bucket_start"]), ":00:00Z")[11:],
			row["key"], row["sent"], row["sent_basis"], row["bounce_rate"], row["complaint_rate"])
	}
	hour := func(t time.Time) string { return t.Format("15") }
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{
			hour(hA) + "  1/observed bounce=0 complaint=<nil>",
			hour(hB) + "  4/observed bounce=1 complaint=0",
			hour(hC) + "  2/reported bounce=<nil> complaint=0",
		}},
		{"&group_by=domain", []string{
			hour(hA) + " x.example 1/observed bounce=0 complaint=<nil>",
			hour(hB) + " gmail.com 10/reported bounce=0.1 complaint=0",
			hour(hB) + " other.example 3/observed bounce=1 complaint=0",
			hour(hC) + " y.example 5/observed bounce=1 complaint=0",
		}},
	} {
		var got []string
		for _, row := range stats(tt.query) {
			got = append(got, line(row))
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("stats%s =\n%s\nwant\n%s", tt.query, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
	for _, g := range []string{"reason", "source", "provider"} {
		stats("&group_by=" + g) // every rate null or within 0..1
	}
	var rows []store.StatsRow // the Go type reads null as no rate
	var st struct{ Items []store.StatsRow }
	h.get("/v1/stats?"+window).json(t, &st)
	rows = st.Items
	if len(rows) != 3 || rows[0].ComplaintRate != nil || rows[0].BounceRate == nil {
		t.Errorf("hour A as StatsRow = %+v", rows)
	}
}
