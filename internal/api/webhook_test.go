package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pb33f/libopenapi-validator/config"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/api"
	bconfig "github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/ingest/webhook/webhooktest"
	"github.com/bounced/bounced/internal/store"
)

// webhookHarness is the real server with webhooks configured from a kit
// of test credentials, recording through a group committer.
// withWebhookRoutes is opts with every registered provider's route, as
// cmd/bounced passes them.
func withWebhookRoutes(opts api.Options) api.Options {
	for _, r := range webhook.Routes() {
		opts.WebhookRoutes = append(opts.WebhookRoutes, api.WebhookRoute{Provider: r.Provider, Probe: r.Probe})
	}
	return opts
}

func webhookHarness(t *testing.T, opts api.Options, dbURL string, edit func(*bconfig.Webhooks)) (*harness, *webhooktest.Kit) {
	t.Helper()
	kit, err := webhooktest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kit.Close)
	reg := prometheus.NewRegistry()
	var db *store.DB
	if dbURL == "" {
		db = dbtest.Open(t, store.Options{Registerer: reg})
	} else {
		if db, err = store.Open(context.Background(), dbURL, store.Options{Registerer: reg}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
	}
	group, err := store.NewGroupCommitter(db, store.GroupCommitOptions{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(group.Close)
	cfg := kit.Config()
	if edit != nil {
		edit(&cfg)
	}
	hooks, err := webhook.New(cfg, group, webhook.Options{Logger: dbtest.Logger(t), Registerer: reg, HTTPClient: kit.HTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	mail, err := ingest.NewMail(db, ingest.MailOptions{Logger: dbtest.Logger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Deps{
		Ingester: mail, Webhooks: hooks, Messages: db, Suppressions: db, Events: db, DB: db,
		Bulk: db, Exporter: db, Recipients: db, Stats: db, Policy: db, Keys: db,
		Logger: dbtest.Logger(t), Registerer: reg, Gatherer: reg,
	}, withWebhookRoutes(opts))
	if err != nil {
		t.Fatal(err)
	}
	// The server runs open (no API keys): the webhook routes authenticate
	// the providers themselves, and nothing else needs a key here.
	h := &harness{t: t, srv: httptest.NewServer(s), api: s, db: db, reg: reg}
	h.open.Store(true)
	h.valid = newValidator(t, config.WithAuthenticationFunc(func(context.Context, *config.AuthenticationInput) error { return nil }))
	t.Cleanup(h.srv.Close)
	return h, kit
}

// send is doAs with a provider's headers (its signature or credentials)
// and no API key.
func (h *harness) send(method, path string, hdr http.Header, body []byte, checkRequest bool) response {
	h.t.Helper()
	var pairs []string
	for k, vs := range hdr {
		for _, v := range vs {
			pairs = append(pairs, k, v)
		}
	}
	return h.doAs("", method, path, hdr.Get("Content-Type"), body, checkRequest, pairs...)
}

// fixture reads a provider's first test payload in the form Kit.Request
// takes.
func fixture(t *testing.T, provider, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../ingest/webhook/testdata", provider, name))
	if err != nil {
		t.Fatal(err)
	}
	if provider == webhook.Mailgun {
		var m struct {
			EventData json.RawMessage `json:"event-data"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m.EventData
	}
	return b
}

var providerFixtures = map[string]string{
	webhook.SES: "bounce-permanent.json", webhook.SendGrid: "batch.json", webhook.Mailgun: "failed-permanent.json",
	webhook.Postmark: "hard-bounce.json", webhook.SparkPost: "batch.json", webhook.Mailjet: "grouped.json",
	webhook.Brevo: "batch.json", webhook.Mandrill: "events.json", webhook.Resend: "bounced.json",
	webhook.Postal: "delivery-failed.json", webhook.Generic: "events.json",
}

type ack struct {
	RawID          int64 `json:"raw_id"`
	Replayed       bool  `json:"replayed"`
	EventsRecorded int   `json:"events_recorded"`
}

// TestWebhookEveryProvider posts a signed payload of every provider to its
// route, checks request and answer against openapi.yaml, replays it, and
// reads the stored input back.
func TestWebhookEveryProvider(t *testing.T) {
	t.Parallel()
	h, kit := webhookHarness(t, api.Options{}, "", nil)
	for _, provider := range webhook.Providers() {
		t.Run(provider, func(t *testing.T) {
			body, hdr := kit.Request(provider, fixture(t, provider, providerFixtures[provider]))
			path := "/v1/webhooks/" + provider
			r := h.send("POST", path, hdr, body, true)
			if r.status != 200 {
				t.Fatalf("POST %s = %d %s", path, r.status, r.body)
			}
			var a ack
			r.json(t, &a)
			if a.Replayed || a.EventsRecorded == 0 || a.RawID == 0 {
				t.Errorf("ack = %+v, want new events", a)
			}
			r = h.send("POST", path, hdr, body, true)
			var again ack
			r.json(t, &again)
			if r.status != 200 || !again.Replayed || again.RawID != a.RawID || again.EventsRecorded != 0 {
				t.Errorf("replay = %d %+v, want 200, replayed, nothing recorded", r.status, again)
			}
			m := h.get(fmt.Sprintf("/v1/messages/%d", a.RawID))
			var msg struct {
				Source, Provider string
				Result           webhook.Summary
				EventIDs         []int64 `json:"event_ids"`
			}
			m.json(t, &msg)
			if msg.Source != "webhook" || msg.Provider != provider || msg.Result.Provider != provider || len(msg.EventIDs) != a.EventsRecorded {
				t.Errorf("stored message = %+v", msg)
			}
			raw := h.get(fmt.Sprintf("/v1/messages/%d/raw", a.RawID))
			if !bytes.Equal(raw.body, body) {
				t.Errorf("GET raw = %q, want the request body", raw.body)
			}
		})
	}
	// The SES bounce suppresses only its bounced recipients.
	if r := h.get("/v1/suppressions/gone@example.com"); r.status != 200 {
		t.Errorf("SES bounced recipient: %d, want suppressed", r.status)
	}
	problemOf(t, h.get("/v1/suppressions/still.here@example.com"), 404)
	metrics := string(h.get("/metrics").body)
	for _, want := range []string{
		`bounced_webhook_requests_total{outcome="accepted",provider="sendgrid"} 1`,
		`bounced_webhook_requests_total{outcome="replayed",provider="sendgrid"} 1`,
		`bounced_webhook_events_total{provider="sendgrid",type="bounce"} 3`,
		`bounced_webhook_events_total{provider="sendgrid",type="unknown"} 1`,
		`bounced_store_batch_inputs_count`,
		`bounced_http_request_duration_seconds_bucket{code="200",method="POST",route="/v1/webhooks/postal"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestWebhookErrors(t *testing.T) {
	t.Parallel()
	h, kit := webhookHarness(t, api.Options{WebhookMaxBodyBytes: 64 << 10}, "", func(c *bconfig.Webhooks) {
		delete(c.Providers, webhook.Brevo)
	})
	signed := func(provider string) ([]byte, http.Header) {
		return kit.Request(provider, fixture(t, provider, providerFixtures[provider]))
	}
	tests := []struct {
		name, path string
		req        func() ([]byte, http.Header)
		status     int
	}{
		{"wrong signature", "/v1/webhooks/generic", func() ([]byte, http.Header) {
			b, hd := signed(webhook.Generic)
			return append(b, ' '), hd
		}, 401},
		{"no credentials", "/v1/webhooks/postmark", func() ([]byte, http.Header) {
			b, _ := signed(webhook.Postmark)
			return b, http.Header{"Content-Type": {"application/json"}}
		}, 401},
		{"malformed SNS message", "/v1/webhooks/ses", func() ([]byte, http.Header) {
			return []byte(`{"Type":`), http.Header{"Content-Type": {"text/plain"}}
		}, 400},
		{"truncated JSON, signed", "/v1/webhooks/sendgrid", func() ([]byte, http.Header) {
			return kit.Request(webhook.SendGrid, []byte(`[{"email":"a@example.com",`))
		}, 422},
		{"wrong types, signed", "/v1/webhooks/generic", func() ([]byte, http.Header) {
			return kit.Request(webhook.Generic, []byte(`{"recipient":["a@example.com"]}`))
		}, 422},
		{"provider not configured", "/v1/webhooks/brevo", func() ([]byte, http.Header) { return signed(webhook.Brevo) }, 404},
		{"too large", "/v1/webhooks/generic", func() ([]byte, http.Header) {
			return kit.Request(webhook.Generic, bytes.Repeat([]byte(" "), 70<<10))
		}, 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, hdr := tt.req()
			r := h.send("POST", tt.path, hdr, body, false)
			p := problemOf(t, r, tt.status)
			if tt.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.status != 404 && p["detail"] == "" {
				t.Errorf("problem %v has no detail", p)
			}
			if tt.status == 422 && p["raw_id"] == nil {
				t.Errorf("422 problem %v lacks raw_id", p)
			}
		})
	}
	if r := h.send("HEAD", "/v1/webhooks/mandrill", http.Header{}, nil, true); r.status != 200 {
		t.Errorf("HEAD mandrill = %d, want 200", r.status)
	}
	metrics := string(h.get("/metrics").body)
	for _, want := range []string{
		`bounced_webhook_rejected_total{provider="generic",reason="bad_signature"} 1`,
		`bounced_webhook_rejected_total{provider="generic",reason="too_large"} 1`,
		`bounced_webhook_rejected_total{provider="postmark",reason="missing_credentials"} 1`,
		`bounced_webhook_rejected_total{provider="ses",reason="malformed"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// endless is a body of n bytes that exists only as it is read.
type endless struct {
	n, read atomic.Int64
}

func (e *endless) Read(p []byte) (int, error) {
	left := e.n.Load() - e.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), left)
	for i := range p[:k] {
		p[i] = 'x'
	}
	e.read.Add(k)
	return int(k), nil
}

// TestWebhook100MBBody streams 100 MB at a webhook route: the answer is
// 413 after the cap, not after the upload, and the server carries on.
func TestWebhook100MBBody(t *testing.T) {
	t.Parallel()
	h, kit := webhookHarness(t, api.Options{}, "", nil)
	for _, provider := range []string{webhook.Generic, webhook.SendGrid, webhook.SES, webhook.Mandrill} {
		t.Run(provider, func(t *testing.T) {
			body := &endless{}
			body.n.Store(100 << 20)
			req, err := http.NewRequest("POST", h.srv.URL+"/v1/webhooks/"+provider, body)
			if err != nil {
				t.Fatal(err)
			}
			_, hdr := kit.Request(provider, []byte("[]"))
			req.Header = hdr
			req.ContentLength = body.n.Load()
			resp, err := h.srv.Client().Do(req)
			if err != nil {
				t.Fatalf("POST 100 MB: %v", err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 413 || !bytes.Contains(got, []byte("5242880")) {
				t.Errorf("POST 100 MB = %d %s, want 413 naming the 5 MiB limit", resp.StatusCode, got)
			}
			if n := body.read.Load(); n >= 50<<20 {
				t.Errorf("the client sent %d bytes before the answer; the server read past its cap", n)
			}
		})
	}
	if r := h.get("/healthz"); r.status != 200 {
		t.Errorf("after the large bodies /healthz = %d", r.status)
	}
}

// TestWebhookDatabaseDown: nothing can be committed, so nothing is
// acknowledged: 503 with Retry-After, for the provider to retry.
func TestWebhookDatabaseDown(t *testing.T) {
	t.Parallel()
	h, kit := webhookHarness(t, api.Options{}, "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", nil)
	for _, provider := range []string{webhook.Generic, webhook.SendGrid, webhook.SES} {
		body, hdr := kit.Request(provider, fixture(t, provider, providerFixtures[provider]))
		r := h.send("POST", "/v1/webhooks/"+provider, hdr, body, true)
		problemOf(t, r, 503)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", provider)
		}
	}
}
