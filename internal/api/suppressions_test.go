package api_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/store"
)

func emailsJSON(n int, scope string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"scope":"` + scope + `","emails":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"u%d@example.com"`, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func itemsJSON(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"email":"u%d@example.com","reason":"import"}`, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

func TestBulkLimits(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{MaxBodyBytes: 4 << 20})
	// 10,000 adds in one call are fine; 10,001 are not.
	r := h.do("POST", "/v1/suppressions", "application/json", itemsJSON(10000), true)
	var added struct{ Added, Existing int }
	r.json(t, &added)
	if r.status != 201 || added.Added != 10000 {
		t.Fatalf("adding 10,000 = %d, %+v", r.status, added)
	}
	p := problemOf(t, h.do("POST", "/v1/suppressions", "application/json", itemsJSON(10001), false), 413)
	if p["param"] != "items" {
		t.Errorf("problem %v, want param items", p)
	}
	// Checking 10,000 finds them all; 10,001 is refused.
	r = h.do("POST", "/v1/suppressions/check", "application/json", emailsJSON(10000, ""), true)
	var res struct {
		Checked    int
		Suppressed []struct {
			Input string
			store.Suppression
		}
		Invalid []string
	}
	r.json(t, &res)
	if r.status != 200 || res.Checked != 10000 || len(res.Suppressed) != 10000 || res.Suppressed[42].Input != "u42@example.com" {
		t.Fatalf("checking 10,000 = %d, checked %d, %d suppressed", r.status, res.Checked, len(res.Suppressed))
	}
	problemOf(t, h.do("POST", "/v1/suppressions/check", "application/json", emailsJSON(10001, ""), false), 413)
	// Invalid addresses are reported, not fatal; unknown fields are.
	h.do("POST", "/v1/suppressions/check", "application/json", []byte(`{"emails":["U1@Example.com","nope","x@y.example"]}`), true).json(t, &res)
	if len(res.Suppressed) != 1 || res.Suppressed[0].Input != "U1@Example.com" || len(res.Invalid) != 1 || res.Invalid[0] != "nope" {
		t.Errorf("mixed check = %+v", res)
	}
	problemOf(t, h.do("POST", "/v1/suppressions/check", "application/json", []byte(`{"emails":[],"bogus":1}`), false), 400)
	problemOf(t, h.do("POST", "/v1/suppressions/check", "text/plain", []byte(`{}`), false), 415)
}

func TestAddOverHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	tests := []struct {
		name, body string
		status     int
		param      string
	}{
		{"one address", `{"email":"one@example.com","reason":"unsubscribe","note":"asked","scope":"list:news"}`, 201, ""},
		{"the same again", `{"email":"ONE@example.com","reason":"unsubscribe","scope":"list:news"}`, 200, ""},
		{"bad address", `{"email":"nope"}`, 400, "email"},
		{"bounce reason refused", `{"email":"a@example.com","reason":"user_unknown"}`, 400, "reason"},
		{"past expiry", `{"email":"a@example.com","expires_at":"2001-01-01T00:00:00Z"}`, 400, "expires_at"},
		{"bad scope", `{"email":"a@example.com","scope":"tenant:"}`, 400, "scope"},
		{"both forms", `{"email":"a@example.com","items":[]}`, 400, "body"},
		{"nothing", `{"items":[]}`, 400, "items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do("POST", "/v1/suppressions", "application/json", []byte(tt.body), tt.status < 400)
			if r.status != tt.status {
				t.Fatalf("POST %s = %d %s, want %d", tt.body, r.status, r.body, tt.status)
			}
			if tt.param != "" {
				if p := problemOf(t, r, tt.status); p["param"] != tt.param {
					t.Errorf("param %v, want %s", p["param"], tt.param)
				}
			}
		})
	}
	// An unsubscribe from one list does not suppress elsewhere.
	problemOf(t, h.get("/v1/suppressions/one@example.com"), 404)
	if r := h.get("/v1/suppressions/one@example.com?scope=list:news"); r.status != 200 {
		t.Errorf("check in list:news = %d", r.status)
	}
}

// TestBulkAddReportsEachItem: one bad address in a bulk add does not
// refuse the others; each bad item is reported in its place, with the
// field at fault and why.
func TestBulkAddReportsEachItem(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	h.do("POST", "/v1/suppressions", "application/json", []byte(`{"email":"there@example.com"}`), true)
	body := `{"items":[{"email":"a@example.com"},{"email":"b"},{"email":"there@example.com"},
		{"email":"c@example.com","reason":"user_unknown"},{"email":"d@example.com","expires_at":"2001-01-01T00:00:00Z"},
		{"email":"e@example.com","scope":"list:news"}]}`
	r := h.do("POST", "/v1/suppressions", "application/json", []byte(body), false)
	var res struct {
		Added, Existing, Failed int
		Items                   []struct {
			Added bool
			Email string
			Scope string
			Error *struct{ Param, Detail string }
		}
	}
	r.json(t, &res)
	if r.status != 201 || res.Added != 2 || res.Existing != 1 || res.Failed != 3 || len(res.Items) != 6 {
		t.Fatalf("bulk add = %d %s, want 201 with 2 added, 1 existing, 3 failed, 6 items", r.status, r.body)
	}
	want := []struct{ email, param string }{
		{"a@example.com", ""}, {"", "items[1].email"}, {"there@example.com", ""},
		{"", "items[3].reason"}, {"", "items[4].expires_at"}, {"e@example.com", ""},
	}
	for i, w := range want {
		it := res.Items[i]
		switch {
		case w.param == "" && (it.Error != nil || it.Email != w.email):
			t.Errorf("items[%d] = %+v, want the entry of %s", i, it, w.email)
		case w.param != "" && (it.Error == nil || it.Error.Param != w.param || it.Error.Detail == "" || it.Added || it.Email != ""):
			t.Errorf("items[%d] = %+v, want an error on %s", i, it, w.param)
		}
	}
	for _, addr := range []string{"a@example.com", "e@example.com?scope=list:news"} {
		if r := h.get("/v1/suppressions/" + addr); r.status != 200 {
			t.Errorf("GET %s after the bulk add = %d", addr, r.status)
		}
	}
	problemOf(t, h.get("/v1/suppressions/c@example.com"), 404)
	// Every item bad: nothing added, each reported, 200.
	r = h.do("POST", "/v1/suppressions", "application/json", []byte(`{"items":[{"email":"x"},{"email":"y"}]}`), true)
	r.json(t, &res)
	if r.status != 200 || res.Added != 0 || res.Failed != 2 || res.Items[1].Error == nil || res.Items[1].Error.Param != "items[1].email" {
		t.Errorf("all bad = %d %s", r.status, r.body)
	}
	// The single form still answers 400 naming the field.
	if p := problemOf(t, h.do("POST", "/v1/suppressions", "application/json", []byte(`{"email":"b"}`), true), 400); p["param"] != "email" {
		t.Errorf("single bad address: param %v", p["param"])
	}
	// A tenant key naming another tenant's scope still refuses the request.
	crm := h.key("crm", "acme", store.KeySuppressionsWrite)
	problemOf(t, h.doAs(crm, "POST", "/v1/suppressions", "application/json",
		[]byte(`{"items":[{"email":"f@example.com"},{"email":"g@example.com","scope":"tenant:other"}]}`), true), 403)
}

// TestConcurrentAddsOverHTTP: two requests adding the same address at once
// make one entry and one of them reports it added.
func TestConcurrentAddsOverHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	for round := range 5 {
		body := []byte(fmt.Sprintf(`{"email":"same%d@example.com"}`, round))
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i := range statuses {
			wg.Go(func() { statuses[i] = h.do("POST", "/v1/suppressions", "application/json", body, true).status })
		}
		wg.Wait()
		if statuses[0]+statuses[1] != 201+200 {
			t.Errorf("two concurrent adds answered %v, want one 201 and one 200", statuses)
		}
	}
	var page struct{ Items []store.Suppression }
	h.get("/v1/suppressions?email_prefix=same").json(t, &page)
	if len(page.Items) != 5 {
		t.Errorf("%d entries, want 5", len(page.Items))
	}
}

func TestImportCSV(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	csvBody := "\ufeffEmail,Scope,Reason,Note,expires_at\n" +
		"a@example.com,,,,\n" +
		"B@Example.com,list:news,unsubscribe,from crm,\n" +
		"not-an-address,,,,\n" +
		"c@example.com,,user_unknown,,\n" +
		"d@example.com,,,,yesterday\n" +
		"e@example.com,,,,2999-01-01T00:00:00Z\n" +
		"\n" +
		"a@example.com,,,,\n" + // a duplicate row
		"f@example.com,\"bad\"quote,,,\n"
	r := h.do("POST", "/v1/suppressions/import?note=batch", "text/csv", []byte(csvBody), true)
	var res struct {
		Imported, Added, Existing, Invalid int
		Errors                             []struct {
			Line  int
			Error string
		}
	}
	r.json(t, &res)
	if r.status != 200 || res.Imported != 5 || res.Added != 4 || res.Existing != 0 || res.Invalid != 3 {
		t.Fatalf("import = %d %s", r.status, r.body)
	}
	var lines []int
	for _, e := range res.Errors {
		lines = append(lines, e.Line)
	}
	if fmt.Sprint(lines) != "[4 5 6]" {
		t.Errorf("error lines %v, want [4 5 6]", lines)
	}
	var s store.Suppression
	h.get("/v1/suppressions/b@example.com?scope=list:news").json(t, &s)
	if s.Reason != store.ReasonUnsubscribe || s.Note != "from crm" || s.Source != "import" {
		t.Errorf("imported b = %+v", s)
	}
	h.get("/v1/suppressions/a@example.com").json(t, &s)
	if s.Reason != store.ReasonImport || s.Note != "batch" {
		t.Errorf("imported a = %+v, want the defaults from the query", s)
	}
	// Idempotent: the same file again adds nothing.
	h.do("POST", "/v1/suppressions/import?note=batch", "text/csv", []byte(csvBody), true).json(t, &res)
	if res.Added != 0 || res.Existing != 4 {
		t.Errorf("second import = %+v, want nothing added", res)
	}
	// A header-less file is one address per line.
	h.do("POST", "/v1/suppressions/import", "text/csv", []byte("x1@example.com\nx2@example.com\n"), true).json(t, &res)
	if res.Added != 2 {
		t.Errorf("header-less import = %+v", res)
	}
	problemOf(t, h.do("POST", "/v1/suppressions/import", "text/csv", []byte("name,scope\nx,y\n"), true), 400)
	problemOf(t, h.do("POST", "/v1/suppressions/import", "application/json", []byte("{}"), false), 415)
	small := newHarness(t, api.Options{MaxImportBytes: 2000})
	big := "email\n" + strings.Repeat("someone@example.com\n", 200)
	problemOf(t, small.do("POST", "/v1/suppressions/import", "text/csv", []byte(big), true), 413)
	if n, _ := small.db.CountSuppressions(t.Context(), store.SuppressionFilter{}); n != 0 {
		t.Errorf("an import over the limit left %d entries, want none", n)
	}
}

func TestExportCSV(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	h.do("POST", "/v1/suppressions", "application/json", itemsJSON(2500), true)
	h.do("POST", "/v1/suppressions", "application/json", []byte(`{"email":"z@other.example","note":"has, a comma"}`), true)
	r := h.doAs("", "GET", "/v1/suppressions?domain=example.com&sort=email", "", nil, true, "Accept", "text/csv")
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export = %d %s", r.status, r.header.Get("Content-Type"))
	}
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2501 || recs[0][0] != "email" {
		t.Fatalf("export: %d lines, first %v", len(recs), recs[0])
	}
	for i := 2; i < len(recs); i++ {
		if recs[i-1][0] >= recs[i][0] {
			t.Fatalf("export not in email order at line %d: %s, %s", i, recs[i-1][0], recs[i][0])
		}
	}
	r = h.doAs("", "GET", "/v1/suppressions?domain=other.example", "", nil, true, "Accept", "text/csv")
	recs, _ = csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if len(recs) != 2 || recs[1][15] != "has, a comma" {
		t.Errorf("export of other.example = %v", recs)
	}
	r = h.doAs("", "GET", "/v1/suppressions?domain=none.example", "", nil, true, "Accept", "text/csv")
	if string(r.body) != strings.Join(csvHeaderForTest, ",")+"\n" {
		t.Errorf("empty export = %q", r.body)
	}
}

var csvHeaderForTest = []string{"email", "scope", "domain", "reason", "class", "status", "reply_code", "diagnostic", "source",
	"provider", "event_count", "first_seen_at", "last_seen_at", "expires_at", "created_by", "note", "created_at"}

func TestBulkDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	h.do("POST", "/v1/suppressions", "application/json", []byte(`{"items":[{"email":"a@old.example"},{"email":"b@old.example"},{"email":"c@new.example"}]}`), true)
	// Without confirm=true it is a dry run: 200, counted, nothing removed.
	for _, q := range []string{"", "&confirm=false"} {
		dry := h.do("DELETE", "/v1/suppressions?domain=old.example"+q, "", nil, true)
		if dry.status != 200 || !bytes.Contains(dry.body, []byte(`"would_delete":2`)) || !bytes.Contains(dry.body, []byte(`"dry_run":true`)) ||
			!bytes.Contains(dry.body, []byte(`"deleted":0`)) {
			t.Errorf("dry-run bulk delete%s = %d %s, want 200 would_delete 2", q, dry.status, dry.body)
		}
	}
	if r := h.get("/v1/suppressions/a@old.example"); r.status != 200 {
		t.Errorf("a@old.example after a dry run = %d, want 200", r.status)
	}
	problemOf(t, h.do("DELETE", "/v1/suppressions?domain=old.example&confirm=yes", "", nil, false), 400)
	problemOf(t, h.do("DELETE", "/v1/suppressions?confirm=true", "", nil, true), 400)
	r := h.do("DELETE", "/v1/suppressions?domain=old.example&confirm=true&note=cleanup", "", nil, true)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"deleted":2`)) {
		t.Fatalf("bulk delete = %d %s", r.status, r.body)
	}
	problemOf(t, h.get("/v1/suppressions/a@old.example"), 404)
	if r := h.get("/v1/suppressions/c@new.example"); r.status != 200 {
		t.Errorf("c@new.example after the bulk delete = %d", r.status)
	}
}

func TestRecipientOverHTTP(t *testing.T) {
	t.Parallel()
	onEveryClock(t, recipientFlow)
}

func recipientFlow(t *testing.T, h *harness) {
	// Two soft failures on different (UTC) days: yesterday's and today's.
	for i, at := range []time.Time{h.now().Add(-25 * time.Hour), h.now()} {
		h.do("POST", "/v1/messages", "message/rfc822", dsnAt(at, fmt.Sprintf("r%d", i), "r@example.com", "4.2.2", "smtp; 452 4.2.2 Mailbox full"), true)
	}
	var v struct {
		Email      string
		State      *store.Recipient
		SoftWindow struct {
			Count      int `json:"count"`
			Threshold  int `json:"threshold"`
			WindowDays int `json:"window_days"`
		} `json:"soft_window"`
		Suppressed bool
		LastEvents struct{ Bounce, Delivery *store.Event } `json:"last_events"`
		History    struct {
			Items      []store.Event
			NextCursor string `json:"next_cursor"`
		}
	}
	h.get("/v1/recipients/R@example.com?limit=1").json(t, &v)
	if v.State == nil || v.SoftWindow.Count != 2 || v.SoftWindow.Threshold != 5 || v.Suppressed || v.LastEvents.Bounce == nil ||
		v.LastEvents.Delivery != nil || len(v.History.Items) != 1 || v.History.NextCursor == "" {
		t.Fatalf("recipient = %+v", v)
	}
	h.get("/v1/recipients/r@example.com?cursor="+url.QueryEscape(v.History.NextCursor)).json(t, &v)
	if len(v.History.Items) != 1 || v.History.NextCursor != "" {
		t.Errorf("second history page = %+v", v.History)
	}
	r := h.do("POST", "/v1/recipients/r@example.com/reset", "application/json", []byte(`{"note":"mailbox emptied"}`), true)
	var st store.Recipient
	r.json(t, &st)
	if r.status != 200 || st.SoftCount != 0 || st.ResetAt == nil {
		t.Errorf("reset = %d %+v", r.status, st)
	}
	problemOf(t, h.get("/v1/recipients/nobody@example.com"), 404)
	problemOf(t, h.do("POST", "/v1/recipients/nobody@example.com/reset", "", nil, true), 404)
}

func TestPolicyOverHTTP(t *testing.T) {
	t.Parallel()
	onEveryClock(t, policyFlow)
}

func policyFlow(t *testing.T, h *harness) {
	var p store.Policy
	h.get("/v1/policy").json(t, &p)
	if p.SoftThreshold != 3 || p.SoftWindowDays != 14 || p.SoftExpiryDays != 30 || p.Version != 0 || p.UpdatedAt != nil {
		t.Fatalf("default policy = %+v, want the defaults, never updated (updated_at null)", p)
	}
	p.SoftThreshold = 2
	body, _ := json.Marshal(p)
	r := h.do("PUT", "/v1/policy", "application/json", body, true)
	r.json(t, &p)
	if r.status != 200 || p.SoftThreshold != 2 || p.Version != 1 || p.UpdatedAt == nil || p.UpdatedAt.Sub(h.now()).Abs() > time.Minute {
		t.Fatalf("PUT = %d %+v, want version 1 updated now", r.status, p)
	}
	stale, _ := json.Marshal(p) // version 1
	if r := h.do("PUT", "/v1/policy", "application/json", stale, true); r.status != 200 {
		t.Fatalf("PUT with the current version = %d", r.status)
	}
	problemOf(t, h.do("PUT", "/v1/policy", "application/json", stale, true), 412) // version 1 is stale now
	bad := problemOf(t, h.do("PATCH", "/v1/policy", "application/merge-patch+json", []byte(`{"reasons":{"auth_required":{"threshold":1}},"version":2}`), true), 400)
	if bad["param"] != "reasons.auth_required" {
		t.Errorf("problem %v", bad)
	}
	// The new threshold applies to the next events: two soft failures on
	// two days (yesterday's and today's) suppress, for soft_expiry_days.
	for i, at := range []time.Time{h.now().Add(-25 * time.Hour), h.now()} {
		raw := dsnAt(at, fmt.Sprintf("pol%d", i), "p@example.com", "4.4.1", "smtp; 421 4.4.1 Connection timed out")
		if r := h.do("POST", "/v1/messages", "message/rfc822", raw, true); r.status != 201 {
			t.Fatalf("POST soft failure %d = %d %s", i, r.status, r.body)
		}
		if i == 0 {
			problemOf(t, h.get("/v1/suppressions/p@example.com"), 404)
		}
	}
	r = h.get("/v1/suppressions/p@example.com")
	if r.status != 200 {
		t.Fatalf("after 2 soft failures with threshold 2: %d %s", r.status, r.body)
	}
	var sup store.Suppression
	r.json(t, &sup)
	if want := h.now().Add(30 * 24 * time.Hour); sup.ExpiresAt == nil || sup.ExpiresAt.Sub(want).Abs() > time.Hour {
		t.Errorf("soft suppression expires at %v, want about %s (30 days on the harness clock)", sup.ExpiresAt, want)
	}
}

func TestStatsAndSentOverHTTP(t *testing.T) {
	t.Parallel()
	onEveryClock(t, statsFlow)
}

func statsFlow(t *testing.T, h *harness) {
	at := h.now().UTC().Truncate(time.Second)
	occurred := at.Add(-2 * time.Second) // the reports' Arrival-Date
	h.do("POST", "/v1/messages", "message/rfc822", dsnAt(at, "s1", "a@x.example", "5.1.1", "smtp; 550 5.1.1 User unknown"), true)
	h.do("POST", "/v1/messages", "message/rfc822", dsnAt(at, "s2", "b@y.example", "4.2.2", "smtp; 452 4.2.2 Mailbox full"), true)
	sentAt := occurred.Format(time.RFC3339)
	if r := h.do("POST", "/v1/sent", "application/json", []byte(`{"report_id":"r1","items":[{"at":"`+sentAt+`","count":50,"domain":"x.example"}]}`), true); r.status != 202 {
		t.Fatalf("POST /v1/sent = %d %s", r.status, r.body)
	}
	if r := h.do("POST", "/v1/sent", "application/json", []byte(`{"report_id":"r1","count":50,"at":"`+sentAt+`"}`), true); r.status != 200 {
		t.Errorf("replayed report = %d, want 200", r.status)
	}
	var st struct {
		Items []store.StatsRow
	}
	day := occurred.Truncate(24 * time.Hour)
	r := h.get("/v1/stats?since=" + day.AddDate(0, 0, -1).Format(time.RFC3339) + "&until=" + day.AddDate(0, 0, 2).Format(time.RFC3339) + "&bucket=day&group_by=domain")
	r.json(t, &st)
	var got []string
	for _, row := range st.Items {
		got = append(got, fmt.Sprintf("%s %s %d/%s b=%d", row.BucketStart.Format(time.DateOnly), row.Key, row.Sent, row.SentBasis, row.Bounced))
	}
	d := day.Format(time.DateOnly)
	if want := d + " x.example 50/reported b=1; " + d + " y.example 1/observed b=1"; strings.Join(got, "; ") != want {
		t.Errorf("stats = %v, want %s", got, want)
	}
	if m := h.get("/metrics"); !bytes.Contains(m.body, []byte("bounced_sent_reported_total 50\n")) {
		t.Error("/metrics lacks bounced_sent_reported_total 50")
	}
	problemOf(t, h.do("GET", "/v1/stats?bucket=week", "", nil, false), 400)
	problemOf(t, h.get("/v1/stats?since=2020-01-01T00:00:00Z&until=2026-01-01T00:00:00Z"), 400)
	problemOf(t, h.do("POST", "/v1/sent", "application/json", []byte(`{"count":-1}`), false), 400)
}
