package api_test

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

type senderHealthBody struct {
	Tenant   *string
	Total    int64
	ByReason []struct {
		Reason    parse.Reason
		Count     int64
		Title     string
		TitleES   string `json:"title_es"`
		Meaning   string
		MeaningES string `json:"meaning_es"`
		Fix       string
		FixES     string `json:"fix_es"`
		Codes     []struct {
			Code, Status, Title, Meaning, Fix string
			ReplyCode                         string `json:"reply_code"`
			FixES                             string `json:"fix_es"`
			Count                             int64
		}
	} `json:"by_reason"`
	ByReportingMTA []store.SenderCount       `json:"by_reporting_mta"`
	BySource       []store.SenderSourceCount `json:"by_source"`
	Series         []store.SenderBucket
	Examples       []store.Event
}

// TestSenderHealthOverHTTP: sender-side failures counted by reason,
// reporting MTA and source, over time, explained in English and Spanish,
// with the latest examples; recipients' own failures are not among them,
// and tenant keys see their own tenant's only.
func TestSenderHealthOverHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	post := func(id, mta string, rcpts ...dsntest.Rcpt) {
		t.Helper()
		raw := bytes.ReplaceAll(dsntest.DSN(id, rcpts...), []byte("Reporting-MTA: dns; mx.example.net"), []byte("Reporting-MTA: dns; "+mta))
		if r := h.do("POST", "/v1/messages", "message/rfc822", raw, true); r.status != 201 {
			t.Fatalf("POST %s = %d %s", id, r.status, r.body)
		}
	}
	post("sh1", "mx.example.net",
		dsntest.Rcpt{Address: "auth@example.com", Status: "5.7.0", Diagnostic: "smtp; 530 5.7.0 Authentication required"},
		dsntest.Rcpt{Address: "gone@example.com", Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 User unknown"})
	post("sh2", "mx2.example.org",
		dsntest.Rcpt{Address: "seq@example.com", Status: "5.5.1", Diagnostic: "smtp; 503 5.5.1 Error: need MAIL command"},
		dsntest.Rcpt{Address: "auth2@example.com", Status: "5.7.0", Diagnostic: "smtp; 530 5.7.0 Authentication required"})
	post("sh3", "mx.example.net",
		dsntest.Rcpt{Address: "spf@example.com", Status: "5.7.23", Diagnostic: "smtp; 550 5.7.23 SPF validation failed"})
	// A tenant's failure, from a provider's webhook: no reporting MTA.
	recordEvents(t, h, "webhook", "sendgrid", "tenant:acme", parse.Event{
		Address: "dmarc@example.com", Type: parse.EventBounce, Class: parse.ClassSender, Reason: parse.ReasonAuthFailure,
		Status: "5.7.26", ReplyCode: "550", Diagnostic: "550 5.7.26 Unauthenticated email is not accepted", OccurredAt: dsntest.Date().Add(-2 * time.Second),
	})

	var all senderHealthBody
	h.get("/v1/sender-health").json(t, &all)
	if all.Total != 5 || all.Tenant != nil {
		t.Fatalf("total %d tenant %v, want 5 sender-side failures of every tenant", all.Total, all.Tenant)
	}
	reasons := map[parse.Reason]int{}
	for i, r := range all.ByReason {
		reasons[r.Reason] = i
		if r.Title == "" || r.TitleES == "" || r.Meaning == "" || r.MeaningES == "" || r.Fix == "" || r.FixES == "" || r.Fix == r.FixES {
			t.Errorf("reason %s lacks its English and Spanish explanation: %+v", r.Reason, r)
		}
		for _, c := range r.Codes {
			if c.Title == "" || c.Meaning == "" || c.Fix == "" || c.FixES == "" {
				t.Errorf("reason %s code %s lacks its explanation: %+v", r.Reason, c.Code, c)
			}
		}
	}
	wantCodes := map[parse.Reason]string{
		parse.ReasonAuthRequired:  "5.7.0/530×2",
		parse.ReasonProtocolError: "5.5.1/503×1",
		parse.ReasonAuthFailure:   "5.7.23/550×1 5.7.26/550×1",
	}
	if len(all.ByReason) != len(wantCodes) {
		t.Errorf("by_reason %+v, want %d reasons", all.ByReason, len(wantCodes))
	}
	for reason, want := range wantCodes {
		i, ok := reasons[reason]
		if !ok {
			t.Errorf("by_reason lacks %s", reason)
			continue
		}
		var got []string
		for _, c := range all.ByReason[i].Codes {
			got = append(got, c.Code+"/"+c.ReplyCode+"×"+itoa(c.Count))
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s codes %v, want %s", reason, got, want)
		}
	}
	if i, ok := reasons[parse.ReasonAuthFailure]; ok {
		for _, c := range all.ByReason[i].Codes {
			if word := map[string]string{"5.7.23": "SPF", "5.7.26": "DMARC"}[c.Code]; !strings.Contains(c.Fix, word) {
				t.Errorf("code %s fix %q, want the code's own fix naming %s", c.Code, c.Fix, word)
			}
		}
	}
	if i, ok := reasons[parse.ReasonProtocolError]; ok && !strings.Contains(all.ByReason[i].Codes[0].Fix, "out of order") {
		t.Errorf("503 5.5.1 fix %q, want the sequence fix", all.ByReason[i].Codes[0].Fix)
	}
	if got := countsOf(all.ByReportingMTA); got != "mx.example.net=2 mx2.example.org=2 =1" {
		t.Errorf("by_reporting_mta %s", got)
	}
	var sources []string
	for _, s := range all.BySource {
		sources = append(sources, s.Key+"("+s.Source+","+s.Provider+")="+itoa(s.Count))
	}
	if strings.Join(sources, " ") != "http(http,)=4 webhook/sendgrid(webhook,sendgrid)=1" {
		t.Errorf("by_source %v", sources)
	}
	if len(all.Series) != 1 || all.Series[0].Total != 5 || all.Series[0].ByReason["auth_required"] != 2 ||
		all.Series[0].BySource["webhook/sendgrid"] != 1 || all.Series[0].ByReportingMTA["mx2.example.org"] != 2 {
		t.Errorf("series %+v, want one hour of 5 failures", all.Series)
	}
	if len(all.Examples) != 5 {
		t.Errorf("%d examples, want 5", len(all.Examples))
	}
	for _, e := range all.Examples {
		if e.Class != parse.ClassSender {
			t.Errorf("example %s is of class %s", e.Address, e.Class)
		}
	}

	// Fewer groups fold the rest into (other), in totals and buckets.
	var folded senderHealthBody
	h.get("/v1/sender-health?groups=1&examples=2&bucket=day").json(t, &folded)
	if got := countsOf(folded.ByReportingMTA); got != "mx.example.net=2 (other)=3" {
		t.Errorf("groups=1: by_reporting_mta %s", got)
	}
	if len(folded.Examples) != 2 || len(folded.Series) != 1 || folded.Series[0].ByReportingMTA["(other)"] != 3 ||
		!folded.Series[0].BucketStart.Equal(folded.Series[0].BucketStart.Truncate(24*time.Hour)) {
		t.Errorf("groups=1, examples=2, bucket=day: %d examples, series %+v", len(folded.Examples), folded.Series)
	}
	// A window without failures.
	var empty senderHealthBody
	h.get("/v1/sender-health?until="+dsntest.Date().Add(-time.Hour).Format(time.RFC3339)).json(t, &empty)
	if empty.Total != 0 || len(empty.ByReason) != 0 || len(empty.Series) != 0 || len(empty.Examples) != 0 {
		t.Errorf("empty window: %+v", empty)
	}

	// Tenants.
	acme := h.key("acme-reader", "acme", store.KeyEventsRead)
	admin := h.key("admin", "", store.KeyAdmin)
	for _, tt := range []struct {
		name, token, query string
		total              int64
	}{
		{"a tenant key sees its own", acme, "", 1},
		{"a tenant key naming itself", acme, "?tenant=acme", 1},
		{"admin, one tenant", admin, "?tenant=acme", 1},
		{"admin, the untenanted", admin, "?tenant=", 4},
		{"admin, all", admin, "", 5},
	} {
		var got senderHealthBody
		h.doAs(tt.token, "GET", "/v1/sender-health"+tt.query, "", nil, true).json(t, &got)
		if got.Total != tt.total {
			t.Errorf("%s: total %d, want %d", tt.name, got.Total, tt.total)
		}
	}
	problemOf(t, h.doAs(acme, "GET", "/v1/sender-health?tenant=other", "", nil, true), 403)
	problemOf(t, h.doAs(h.key("no-events", "", store.KeySuppressionsRead), "GET", "/v1/sender-health", "", nil, true), 403)
	for _, q := range []string{"bucket=week", "examples=0", "examples=101", "groups=0", "since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z"} {
		problemOf(t, h.doAs(admin, "GET", "/v1/sender-health?"+q, "", nil, false), 400)
	}
}

func countsOf(cs []store.SenderCount) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Key+"="+itoa(c.Count))
	}
	return strings.Join(parts, " ")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// recordEvents records events as a provider's webhook would, in scope.
func recordEvents(t *testing.T, h *harness, source, provider, scope string, evs ...parse.Event) {
	t.Helper()
	raw := fmt.Appendf(nil, `{"test":%q,"n":%d}`, t.Name(), time.Now().UnixNano())
	if _, err := h.db.Record(t.Context(), store.Input{Source: source, Provider: provider, ContentType: "application/json",
		Raw: raw, Status: store.ParseParsed, Kind: "bounce", Events: evs, Scope: scope}); err != nil {
		t.Fatal(err)
	}
}
