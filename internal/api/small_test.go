package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/logtest"
	"github.com/bounced/bounced/internal/store"
)

// countingKeys is the real key store, counting the lookups of tokens.
type countingKeys struct {
	*store.DB
	lookups atomic.Int64
}

func (c *countingKeys) AuthenticateAPIKey(ctx context.Context, token string) (store.APIKey, error) {
	c.lookups.Add(1)
	return c.DB.AuthenticateAPIKey(ctx, token)
}

// plainServer is the real server over a real database, logging into logs,
// for tests that look at logs or send what the spec does not describe.
func plainServer(t *testing.T, opts api.Options) (string, *store.DB, *countingKeys, *logtest.Buffer, *prometheus.Registry) {
	t.Helper()
	logs := &logtest.Buffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testLog{t}), nil))
	reg := prometheus.NewRegistry()
	db := dbtest.Open(t, store.Options{Registerer: reg})
	mail, err := ingest.NewMail(db, ingest.MailOptions{Logger: logger, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	keys := &countingKeys{DB: db}
	s, err := api.New(api.Deps{
		Ingester: mail, Messages: db, Suppressions: db, Events: db, DB: db,
		Bulk: db, Exporter: db, Recipients: db, Stats: db, Policy: db, Keys: keys,
		Logger: logger, Registerer: reg, Gatherer: reg,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return newServer(t, s), db, keys, logs, reg
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func call(t *testing.T, method, url, token, contentType string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp, got
}

// TestRawMessageIsAnAttachment: the stored bytes of any input, a body
// posted as text/html included, are served for download, never for a
// browser to render or sniff.
func TestRawMessageIsAnAttachment(t *testing.T) {
	t.Parallel()
	h, kit := webhookHarness(t, api.Options{}, "", nil)
	payload := []byte(`{"recipient":"html@example.com","type":"bounce","status":"5.1.1","diagnostic":"<script>alert(1)</script>"}`)
	body, hdr := kit.Request(webhook.Generic, payload)
	hdr.Set("Content-Type", "text/html")
	r := h.send("POST", "/v1/webhooks/generic", hdr, body, false)
	var a ack
	if r.status != http.StatusOK || json.Unmarshal(r.body, &a) != nil {
		t.Fatalf("POST generic as text/html = %d %s", r.status, r.body)
	}
	mail := h.do("POST", "/v1/messages", "message/rfc822", dsntest.DSN("raw1", dsntest.Rcpt{Address: "raw@example.com", Status: "5.1.1"}), true)
	var m store.Message
	mail.json(t, &m)
	for _, id := range []int64{a.RawID, m.ID} {
		resp, got := call(t, "GET", fmt.Sprintf("%s/v1/messages/%d/raw", h.srv.URL, id), "", "", nil)
		if resp.StatusCode != http.StatusOK || len(got) == 0 {
			t.Fatalf("GET raw %d = %d", id, resp.StatusCode)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("raw %d (%s): X-Content-Type-Options %q, want nosniff", id, resp.Header.Get("Content-Type"), got)
		}
		if got := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(got, "attachment") {
			t.Errorf("raw %d (%s): Content-Disposition %q, want attachment", id, resp.Header.Get("Content-Type"), got)
		}
	}
}

// TestErrorLogsNameTheRoute: a failing request is logged with its route
// pattern, never its path, which holds the address.
func TestErrorLogsNameTheRoute(t *testing.T) {
	t.Parallel()
	base, db, _, logs, _ := plainServer(t, api.Options{})
	db.Close() // every query fails from now on
	for _, path := range []string{"/v1/suppressions/secret.person@example.com", "/v1/recipients/secret.person@example.com"} {
		if resp, _ := call(t, "GET", base+path, "", "", nil); resp.StatusCode < 500 {
			t.Fatalf("GET %s with the database closed = %d, want a 5xx", path, resp.StatusCode)
		}
	}
	out := logs.String()
	if strings.Contains(out, "secret.person") {
		t.Errorf("the logs hold the address:\n%s", out)
	}
	for _, route := range []string{"/v1/suppressions/{email}", "/v1/recipients/{email}"} {
		if !strings.Contains(out, route) {
			t.Errorf("the logs do not name the route %s:\n%s", route, out)
		}
	}
}

// TestFailedAuthenticationsRateLimited: random tokens from one client cost
// a bounded number of key lookups; then they are refused with 429 before
// any lookup, while the configured admin key and other clients still work.
func TestFailedAuthenticationsRateLimited(t *testing.T) {
	t.Parallel()
	const adminKey = "config-admin-key-0123456789abcdef"
	base, db, keys, _, reg := plainServer(t, api.Options{AdminKey: adminKey})
	if _, _, err := db.CreateAPIKey(context.Background(), store.NewAPIKey{Name: "good", Scopes: []store.KeyScope{store.KeyAdmin}}); err != nil {
		t.Fatal(err)
	}
	limited := 0
	for i := range 200 {
		resp, _ := call(t, "GET", base+"/v1/suppressions", fmt.Sprintf("bnc_guess%d", i), "", nil)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
		case http.StatusTooManyRequests:
			limited++
			if resp.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		default:
			t.Fatalf("guess %d = %d, want 401 or 429", i, resp.StatusCode)
		}
	}
	if n := keys.lookups.Load(); n > api.AuthFailureBurst+10 {
		t.Errorf("200 guessed tokens cost %d key lookups, want about %d", n, api.AuthFailureBurst)
	}
	if limited < 150 {
		t.Errorf("%d of 200 guesses were refused with 429, want most", limited)
	}
	if got := testutil.ToFloat64(counterVec(t, reg, "bounced_http_auth_refused_total", "reason", "client_rate_limited")); got != float64(limited) {
		t.Errorf("auth_refused_total{reason=client_rate_limited} = %v, want %d", got, limited)
	}
	if resp, _ := call(t, "GET", base+"/v1/suppressions", adminKey, "", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("the configured admin key from the limited client = %d, want 200", resp.StatusCode)
	}
	// Requests without a token cost no lookup and are not limited.
	if resp, _ := call(t, "GET", base+"/v1/suppressions", "", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token = %d, want 401", resp.StatusCode)
	}
}

// counterVec finds one series of a registered metric family.
func counterVec(t *testing.T, reg *prometheus.Registry, name, label, value string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "copy"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "absent"})
}

// TestHeadOnGetRoutes: HEAD works wherever GET does, with GET's status
// and headers and no body; routes without GET still answer 405.
func TestHeadOnGetRoutes(t *testing.T) {
	t.Parallel()
	base, _, _, _, _ := plainServer(t, api.Options{})
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/v1/suppressions", "/v1/codes", "/v1/codes/550", "/v1/policy", "/v1/events"} {
		get, _ := call(t, "GET", base+path, "", "", nil)
		head, body := call(t, "HEAD", base+path, "", "", nil)
		if head.StatusCode != get.StatusCode || head.StatusCode != http.StatusOK {
			t.Errorf("HEAD %s = %d, GET = %d, want both 200", path, head.StatusCode, get.StatusCode)
		}
		if len(body) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: body %d bytes, Content-Type %q (GET %q)", path, len(body), head.Header.Get("Content-Type"), get.Header.Get("Content-Type"))
		}
	}
	if resp, _ := call(t, "HEAD", base+"/v1/suppressions/nobody@example.com", "", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD of an address not listed = %d, want 404", resp.StatusCode)
	}
	if resp, _ := call(t, "HEAD", base+"/v1/sent", "", "", nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD of a POST-only route = %d, want 405", resp.StatusCode)
	}
}

// TestUnsupportedMediaTypeNamesTheRoutesTypes: a 415 says what the route
// takes, not what another route takes.
func TestUnsupportedMediaTypeNamesTheRoutesTypes(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	for _, tt := range []struct{ method, path, want, notWant string }{
		{"POST", "/v1/suppressions", "application/json", "message/rfc822"},
		{"POST", "/v1/suppressions/check", "application/json", "message/rfc822"},
		{"PUT", "/v1/policy", "application/json", "message/rfc822"},
		{"PATCH", "/v1/policy", "application/merge-patch+json", "message/rfc822"},
		{"POST", "/v1/sent", "application/json", "message/rfc822"},
		{"POST", "/v1/suppressions/import", "text/csv", "message/rfc822"},
		{"POST", "/v1/messages", "message/rfc822", "application/json"},
	} {
		p := problemOf(t, h.do(tt.method, tt.path, "text/plain", []byte("x"), false), http.StatusUnsupportedMediaType)
		detail, _ := p["detail"].(string)
		if !strings.Contains(detail, tt.want) || strings.Contains(detail, tt.notWant) {
			t.Errorf("%s %s 415 detail %q, want it to name %s (and not %s)", tt.method, tt.path, detail, tt.want, tt.notWant)
		}
	}
}

// TestAutoAuthNeverLoosens: on loopback, auto mode is open until the first
// key appears, then requires keys for as long as the process runs, also
// once every key is revoked.
func TestAutoAuthNeverLoosens(t *testing.T) {
	t.Parallel()
	base, db, _, _, _ := plainServer(t, api.Options{})
	if resp, _ := call(t, "GET", base+"/v1/suppressions", "", "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("no key at all, loopback = %d, want 200 (open)", resp.StatusCode)
	}
	_, token, err := db.CreateAPIKey(context.Background(), store.NewAPIKey{Name: "k", Scopes: []store.KeyScope{store.KeyAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := call(t, "GET", base+"/v1/suppressions", "", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after the first key, no token = %d, want 401", resp.StatusCode)
	}
	if resp, _ := call(t, "GET", base+"/v1/suppressions", token, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the key = %d, want 200", resp.StatusCode)
	}
	if _, err := db.RevokeAPIKey(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path, ct, body string }{
		{"GET", "/v1/suppressions", "", ""},
		{"PUT", "/v1/policy", "application/json", `{"soft_threshold":1}`},
	} {
		if resp, body := call(t, r.method, base+r.path, "", r.ct, []byte(r.body)); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("after revoking the last key, %s %s = %d %s, want 401", r.method, r.path, resp.StatusCode, body)
		}
	}
}

// TestExposedAuthRequiresKeys: beyond loopback, auto mode requires keys
// from the start and keeps requiring them with none left: every request
// is refused, and the log says why.
func TestExposedAuthRequiresKeys(t *testing.T) {
	t.Parallel()
	base, db, _, logs, _ := plainServer(t, api.Options{Exposed: true})
	if resp, _ := call(t, "GET", base+"/v1/suppressions", "", "", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("exposed, no key at all = %d, want 401", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), "no API key exists") {
		t.Errorf("the log does not say why every request is refused:\n%s", logs.String())
	}
	_, token, err := db.CreateAPIKey(context.Background(), store.NewAPIKey{Name: "k", Scopes: []store.KeyScope{store.KeyAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := call(t, "GET", base+"/v1/suppressions", token, "", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("the key = %d, want 200", resp.StatusCode)
	}
	if _, err := db.RevokeAPIKey(context.Background(), "k"); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ method, path, ct, body string }{
		{"GET", "/v1/suppressions", "", ""},
		{"PUT", "/v1/policy", "application/json", `{"soft_threshold":1}`},
	} {
		if resp, body := call(t, r.method, base+r.path, "", r.ct, []byte(r.body)); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("after revoking the last key, %s %s = %d %s, want 401", r.method, r.path, resp.StatusCode, body)
		}
	}
}

// TestQuarantineListing: mail a mailbox set aside is listed, with its raw
// input, to keys that may read events for every tenant.
func TestQuarantineListing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	var page struct {
		Items      []store.QuarantinedMail `json:"items"`
		NextCursor string                  `json:"next_cursor"`
	}
	h.get("/v1/quarantine").json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("quarantine before anything = %+v", page)
	}
	for i := range 3 {
		raw := dsntest.DSN(fmt.Sprintf("q%d", i), dsntest.Rcpt{Address: "q@example.com", Status: "5.1.1"})
		if _, err := h.db.QuarantineMail(context.Background(), "box", store.Input{Source: "maildir", Provider: "box",
			ContentType: "message/rfc822", Raw: raw, Error: "quarantined after 5 failed attempts; the last: refused"}); err != nil {
			t.Fatal(err)
		}
	}
	h.get("/v1/quarantine?limit=2").json(t, &page)
	if len(page.Items) != 2 || page.NextCursor == "" || page.Items[0].Mailbox != "box" || page.Items[0].RawID == nil {
		t.Fatalf("first page = %+v", page)
	}
	first := page.Items[0]
	h.get("/v1/quarantine?limit=2&cursor="+page.NextCursor).json(t, &page)
	if len(page.Items) != 1 || page.NextCursor != "" || page.Items[0].ID >= first.ID {
		t.Errorf("second page = %+v", page)
	}
	m, err := h.db.GetMessage(context.Background(), *first.RawID)
	if err != nil || m.ParseStatus != store.ParseFailed || len(m.EventIDs) != 0 {
		t.Errorf("quarantined raw input = %+v, %v", m, err)
	}
	if n, _ := h.db.CountSuppressions(context.Background(), store.SuppressionFilter{}); n != 0 {
		t.Errorf("%d suppressions from quarantined mail, want 0", n)
	}
	problemOf(t, h.get("/v1/quarantine?cursor=bogus"), http.StatusBadRequest)
	tenant := h.key("t", "acme", store.KeyEventsRead)
	problemOf(t, h.doAs(tenant, "GET", "/v1/quarantine", "", nil, true), http.StatusForbidden)
}

// TestSentMessages: messages reported sent are kept for matching bounces,
// with or without counts; bad ones are refused.
func TestSentMessages(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	r := h.do("POST", "/v1/sent", "application/json", []byte(`{"messages":[{"message_id":"<m1@example.org>","recipient":"A@Example.com"},{"message_id":"tok42"}]}`), true)
	var res struct {
		Counted   int64 `json:"counted"`
		Duplicate bool  `json:"duplicate"`
		Messages  int   `json:"messages"`
	}
	r.json(t, &res)
	if r.status != http.StatusAccepted || res.Messages != 2 || res.Counted != 0 {
		t.Fatalf("POST /v1/sent messages = %d %s", r.status, r.body)
	}
	got, err := h.db.MatchSent(context.Background(), []string{"m1@example.org"}, []string{"a@example.com", "b@example.com"})
	if err != nil || !got["a@example.com"] || got["b@example.com"] {
		t.Errorf("MatchSent(m1) = %v, %v; want a@example.com only", got, err)
	}
	got, _ = h.db.MatchSent(context.Background(), []string{"tok42"}, []string{"b@example.com"})
	if !got["b@example.com"] {
		t.Errorf("MatchSent(tok42) = %v; an id without a recipient matches any", got)
	}
	r = h.do("POST", "/v1/sent", "application/json", []byte(`{"count":10,"messages":[{"message_id":"<m2@example.org>"}]}`), true)
	r.json(t, &res)
	if r.status != http.StatusAccepted || res.Counted != 10 || res.Messages != 1 {
		t.Errorf("POST /v1/sent count and messages = %d %s", r.status, r.body)
	}
	for _, body := range []string{
		`{"messages":[{"message_id":""}]}`,
		`{"messages":[{"message_id":"<x@y>","recipient":"not an address"}]}`,
		`{"messages":[{"message_id":"a\u0000b"}]}`,
	} {
		problemOf(t, h.do("POST", "/v1/sent", "application/json", []byte(body), false), http.StatusBadRequest)
	}
}
