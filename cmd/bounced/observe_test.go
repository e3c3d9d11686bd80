package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/smtp"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	dto "github.com/prometheus/client_model/go"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dnstest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/logtest"
)

// observed is a running bounced with every source of metrics configured
// (webhooks, a Maildir, an SMTP receiver, a failing IMAP mailbox, an admin
// key) that has been driven once through each, so /metrics holds a
// sample of every family.
type observed struct {
	base  string
	admin string
}

// secretScope and secretTenant are names used in the traffic that must
// never appear in /metrics.
const (
	secretScope  = "list:secret-campaign"
	secretTenant = "acme-corp"
)

func startObserved(t *testing.T) observed {
	t.Helper()
	kit := kitFor(t)
	admin := "admin-token-for-the-metrics-test-0123456789"
	// example.com's mail goes to Microsoft 365, says the DNS server bounced asks.
	dns := dnstest.Start(t)
	dns.MX("example.com", "example-com.mail.protection.outlook.com")
	vars := []string{
		"BOUNCED_MX_RESOLVER", dns.Addr,
		"BOUNCED_DATABASE_URL", dbtest.URL(t),
		"BOUNCED_ADMIN_KEY", admin,
		"BOUNCED_MAILDIR", maildirWith(t, dsntest.DSN("md", dsntest.Rcpt{Address: "maildir-user@example.com", Status: "5.1.1"})),
		"BOUNCED_SMTP_LISTEN", "127.0.0.1:0",
		"BOUNCED_SMTP_DOMAINS", "bounce.example.net",
		"BOUNCED_IMAP_MAILBOXES", "down",
		"BOUNCED_IMAP_DOWN_HOST", "127.0.0.1",
		"BOUNCED_IMAP_DOWN_PORT", strings.TrimPrefix(freePort(t), "127.0.0.1:"),
		"BOUNCED_IMAP_DOWN_TLS", "plain",
		"BOUNCED_IMAP_DOWN_USER", "bounces",
		"BOUNCED_IMAP_DOWN_PASSWORD", "imap-password-never-shown",
		"BOUNCED_RETENTION_MONTHS", "24",
	}
	for k, v := range kit.Env() {
		vars = append(vars, k, v)
	}
	base, smtpAddr := startServeListening(t, env(vars...))
	o := observed{base: base, admin: admin}
	eventually(t, "the Maildir message", func() bool {
		return o.status(t, "GET", "/v1/suppressions/maildir-user@example.com", "", nil) == 200
	})
	// The Maildir message's domain was new: counted unknown, and looked
	// up in the background, before anything else is sent.
	eventually(t, "example.com's MX lookup", func() bool {
		return strings.Contains(string(o.scrape(t)), `bounced_mx_lookups_total{outcome="provider"} 1`)
	})

	// SMTP: a DSN for the bounce domain.
	if err := smtp.SendMail(smtpAddr, nil, "", []string{"bounces@bounce.example.net"},
		dsntest.DSN("smtp", dsntest.Rcpt{Address: "smtp-user@example.com", Status: "5.1.1"})); err != nil {
		t.Fatalf("SMTP delivery: %v", err)
	}
	// HTTP: a raw DSN, and a soft one.
	o.must(t, "POST", "/v1/messages", "message/rfc822", dsntest.DSN("http", dsntest.Rcpt{Address: "http-user@example.com", Status: "5.1.1"}), 201)
	o.must(t, "POST", "/v1/messages", "message/rfc822", dsntest.DSN("soft", dsntest.Rcpt{Address: "soft-user@example.com", Status: "4.2.2", Action: "failed"}), 201)
	// Webhooks: accepted, replayed and rejected.
	for i, ev := range []string{
		`{"recipient":"wh-hard@example.com","type":"bounce","status":"5.1.1","id":"m-1"}`,
		`{"recipient":"wh-ok@example.com","type":"delivery","id":"m-2"}`,
		`{"recipient":"wh-spam@example.com","type":"complaint","id":"m-3"}`,
		`{"recipient":"wh-sender@example.com","type":"bounce","status":"5.7.0","reply_code":"530","id":"m-4"}`,
	} {
		body, h := kit.Request("generic", []byte(ev))
		if code := o.send(t, "POST", "/v1/webhooks/generic", h, body); code != 200 {
			t.Fatalf("generic webhook %d = %d", i, code)
		}
		if i == 0 {
			if code := o.send(t, "POST", "/v1/webhooks/generic", h, body); code != 200 {
				t.Fatalf("replayed generic webhook = %d", code)
			}
		}
	}
	bad := http.Header{"Content-Type": {"application/json"}, "X-Bounced-Signature": {"sha256=00"}}
	if code := o.send(t, "POST", "/v1/webhooks/generic", bad, []byte(`{"recipient":"x@example.com"}`)); code != 401 {
		t.Fatalf("badly signed webhook = %d, want 401", code)
	}
	// The suppression list: add, check (cache miss then hit), remove.
	o.must(t, "POST", "/v1/suppressions", "application/json", []byte(`{"email":"manual@example.com","scope":"`+secretScope+`"}`), 201)
	o.must(t, "POST", "/v1/suppressions", "application/json", []byte(`{"email":"tenant@example.com","scope":"tenant:`+secretTenant+`"}`), 201)
	o.must(t, "GET", "/v1/suppressions/http-user@example.com", "", nil, 200)
	o.must(t, "GET", "/v1/suppressions/http-user@example.com", "", nil, 200)
	o.must(t, "DELETE", "/v1/suppressions/manual@example.com?scope="+secretScope, "", nil, 204)
	o.must(t, "POST", "/v1/sent", "application/json", []byte(`{"count":1000}`), 202)
	o.must(t, "GET", "/v1/stats", "", nil, 200)
	// Refused without a key, and a route that does not exist.
	if code := getStatus(t, o.base+"/v1/suppressions/x@example.com"); code != 401 {
		t.Fatalf("request without a key = %d, want 401", code)
	}
	if code := getStatus(t, o.base+"/no/such/route"); code != 404 {
		t.Fatalf("unknown route = %d, want 404", code)
	}
	eventually(t, "the IMAP mailbox to fail", func() bool {
		return strings.Contains(string(o.scrape(t)), `bounced_mailbox_connection_state{mailbox="down",state="backoff"} 1`)
	})
	return o
}

// startServeListening is startServe that also returns the SMTP receiver's
// address from the start banner.
func startServeListening(t *testing.T, getenv func(string) string) (base, smtpAddr string) {
	t.Helper()
	var banner logtest.Buffer
	base, _ = startServeTo(t, getenv, &banner)
	eventually(t, "the SMTP banner", func() bool { return strings.Contains(banner.String(), "smtp receiver listening on ") })
	_, rest, _ := strings.Cut(banner.String(), "smtp receiver listening on ")
	smtpAddr, _, _ = strings.Cut(rest, "\n")
	return base, strings.TrimSpace(smtpAddr)
}

func (o observed) send(t *testing.T, method, path string, h http.Header, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, o.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if !strings.HasPrefix(path, "/v1/webhooks/") {
		req.Header.Set("Authorization", "Bearer "+o.admin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func (o observed) status(t *testing.T, method, path, ctype string, body []byte) int {
	t.Helper()
	h := http.Header{}
	if ctype != "" {
		h.Set("Content-Type", ctype)
	}
	return o.send(t, method, path, h, body)
}

func (o observed) must(t *testing.T, method, path, ctype string, body []byte, want int) {
	t.Helper()
	if code := o.status(t, method, path, ctype, body); code != want {
		t.Fatalf("%s %s = %d, want %d", method, path, code, want)
	}
}

func (o observed) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	req, err := http.NewRequest("GET", o.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+o.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s = %d, %v", path, resp.StatusCode, err)
	}
}

// squeezeAll returns the first line of text holding every part.
func squeezeAll(text string, parts ...string) string {
	for line := range strings.Lines(text) {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return line
		}
	}
	return ""
}

func (o observed) scrape(t *testing.T) []byte {
	t.Helper()
	resp, err := http.Get(o.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics = %d, %v", resp.StatusCode, err)
	}
	return b
}

func parseMetrics(t *testing.T, exposition []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(exposition))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}

// bouncedMetrics is every bounced_ metric family and its labels: the
// audit of what bounced exports. A new metric goes here, and into
// docs/operations.md, or this test fails. No label may hold an address,
// a message id, a tenant or a scope name: only enums, configured names
// (providers, mailboxes), route patterns and status codes.
var bouncedMetrics = map[string][]string{
	"bounced_build_info":                                       {"commit", "goversion", "version"},
	"bounced_events_total":                                     {"class", "mailbox_provider", "provider", "reason", "source", "type"},
	"bounced_mx_lookups_total":                                 {"outcome"},
	"bounced_mx_lookups_dropped_total":                         nil,
	"bounced_sent_reported_total":                              nil,
	"bounced_suppressions_added_total":                         {"reason", "scope_kind"},
	"bounced_suppressions_removed_total":                       {"reason", "scope_kind"},
	"bounced_suppressions_active":                              {"reason", "scope_kind"},
	"bounced_check_cache_hits_total":                           nil,
	"bounced_check_cache_misses_total":                         nil,
	"bounced_messages_received_total":                          {"source"},
	"bounced_parse_messages_total":                             {"outcome"},
	"bounced_parse_duration_seconds":                           nil,
	"bounced_ingest_duration_seconds":                          {"source"},
	"bounced_ingest_recipients_dropped_total":                  {"source"},
	"bounced_ingest_unverified_total":                          {"source"},
	"bounced_webhook_requests_total":                           {"outcome", "provider"},
	"bounced_webhook_rejected_total":                           {"provider", "reason"},
	"bounced_webhook_events_total":                             {"provider", "type"},
	"bounced_mailbox_messages_total":                           {"mailbox", "outcome"},
	"bounced_mailbox_last_success_timestamp_seconds":           {"mailbox"},
	"bounced_mailbox_connection_state":                         {"mailbox", "state"},
	"bounced_store_batch_inputs":                               nil,
	"bounced_store_batch_events":                               nil,
	"bounced_store_batch_wait_seconds":                         nil,
	"bounced_store_batch_duration_seconds":                     nil,
	"bounced_store_maintenance_last_success_timestamp_seconds": nil,
	"bounced_db_up":                                            nil,
	"bounced_db_pool_acquired_conns":                           nil,
	"bounced_db_pool_idle_conns":                               nil,
	"bounced_db_pool_total_conns":                              nil,
	"bounced_db_pool_max_conns":                                nil,
	"bounced_db_pool_acquire_waits_total":                      nil,
	"bounced_db_pool_acquire_wait_seconds_total":               nil,
	"bounced_http_request_duration_seconds":                    {"code", "method", "route"},
	"bounced_http_requests_in_flight":                          nil,
	"bounced_http_auth_refused_total":                          {"reason"},
	"bounced_outbound_attempts_total":                          {"outcome"},
	"bounced_outbound_dead_total":                              nil,
	"bounced_outbound_attempt_duration_seconds":                nil,
	"bounced_outbound_deliveries":                              {"state"},
}

func labelNames(m *dto.Metric) []string {
	var names []string
	for _, l := range m.GetLabel() {
		names = append(names, l.GetName())
	}
	sort.Strings(names)
	return names
}

// TestMetricsExposition scrapes a bounced that has done a bit of
// everything: every bounced_ family is the audited one with the audited
// labels, no label value is an address or a scope or tenant name, and
// promtool's linter finds nothing.
func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	promtool := lookTool(t, "promtool", "prometheus")
	o := startObserved(t)
	exposition := o.scrape(t)
	mfs := parseMetrics(t, exposition)
	for name, want := range bouncedMetrics {
		mf := mfs[name]
		if mf == nil || len(mf.GetMetric()) == 0 {
			t.Errorf("/metrics has no sample of %s", name)
			continue
		}
		for _, m := range mf.GetMetric() {
			if got := labelNames(m); !slices.Equal(got, want) {
				t.Errorf("%s has labels %v, want %v", name, got, want)
				break
			}
		}
	}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "bounced_") {
			continue
		}
		if _, ok := bouncedMetrics[name]; !ok {
			t.Errorf("%s is not in the metrics audit (bouncedMetrics)", name)
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if strings.Contains(v, "@") || strings.Contains(v, secretTenant) || strings.Contains(v, "secret-campaign") || len(v) > 128 {
					t.Errorf("%s{%s=%q}: a label holds an address, a tenant, a scope name or free text", name, l.GetName(), v)
				}
			}
		}
	}
	for _, forbidden := range []string{"example.com", secretTenant, "secret-campaign", "imap-password-never-shown", o.admin} {
		if bytes.Contains(exposition, []byte(forbidden)) {
			t.Errorf("/metrics contains %q", forbidden)
		}
	}
	// Each source of events shows up with its own labels.
	for _, want := range []string{
		`bounced_events_total{class="hard",mailbox_provider="microsoft",provider="",reason="user_unknown",source="http",type="bounce"} 1`,
		`bounced_events_total{class="hard",mailbox_provider="microsoft",provider="smtp",reason="user_unknown",source="smtp",type="bounce"} 1`,
		`bounced_events_total{class="hard",mailbox_provider="microsoft",provider="generic",reason="user_unknown",source="webhook",type="bounce"} 1`,
		`bounced_events_total{class="sender",mailbox_provider="microsoft",provider="generic",reason="auth_required",source="webhook",type="bounce"} 1`,
		`bounced_events_total{class="complaint",mailbox_provider="microsoft",provider="generic",reason="complaint",source="webhook",type="complaint"} 1`,
		`bounced_mx_lookups_total{outcome="provider"} 1`,
		`bounced_mx_lookups_dropped_total 0`,
		`bounced_webhook_requests_total{outcome="replayed",provider="generic"} 1`,
		`bounced_webhook_rejected_total{provider="generic",reason="bad_signature"} 1`,
		`bounced_suppressions_added_total{reason="manual",scope_kind="list"} 1`,
		`bounced_suppressions_added_total{reason="manual",scope_kind="tenant"} 1`,
		`bounced_suppressions_removed_total{reason="manual",scope_kind="list"} 1`,
		`bounced_http_request_duration_seconds_count{code="404",method="GET",route="unmatched"} 1`,
		`bounced_db_up 1`,
		`bounced_sent_reported_total 1000`,
	} {
		if !bytes.Contains(exposition, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The Maildir message came first, before example.com was looked up.
	if squeezeAll(string(exposition), `source="maildir"`, `mailbox_provider="unknown"`, `type="bounce"`) == "" {
		t.Errorf("/metrics lacks the Maildir bounce counted with mailbox_provider unknown")
	}
	// The lookup's answer was stored: stats by mailbox provider place
	// example.com's events with Microsoft.
	eventually(t, "stats by mailbox provider", func() bool {
		var st struct{ Items []struct{ Key string } }
		o.getJSON(t, "/v1/stats?group_by=mailbox_provider", &st)
		return len(st.Items) > 0 && !slices.ContainsFunc(st.Items, func(i struct{ Key string }) bool { return i.Key != "microsoft" })
	})
	if t.Failed() {
		t.Logf("/metrics:\n%s", exposition)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// lookTool finds a command the test needs, or fails naming the Debian
// package that has it.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (Debian: apt-get install %s): %v", name, pkg, err)
	}
	return p
}
