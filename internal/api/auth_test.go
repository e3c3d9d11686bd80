package api_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/store"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	// Open while no key exists: the README's flow.
	if r := h.get("/v1/suppressions"); r.status != 200 {
		t.Fatalf("GET /v1/suppressions with no keys at all = %d, want 200 (open)", r.status)
	}
	reader := h.key("reader", "", store.KeySuppressionsRead)
	writer := h.key("writer", "", store.KeySuppressionsWrite)
	admin := h.key("root", "", store.KeyAdmin)
	revoked := h.key("old", "", store.KeyAdmin)
	if _, err := h.db.RevokeAPIKey(context.Background(), "old"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, method, path string
		status                    int
	}{
		{"missing key once one exists", "", "GET", "/v1/suppressions", 401},
		{"wrong key", "bnc_not-a-key", "GET", "/v1/suppressions", 401},
		{"revoked key", revoked, "GET", "/v1/suppressions", 401},
		{"read scope reads", reader, "GET", "/v1/suppressions", 200},
		{"read scope cannot delete", reader, "DELETE", "/v1/suppressions/a@example.com", 403},
		{"write scope cannot read", writer, "GET", "/v1/suppressions", 403},
		{"write scope deletes", writer, "DELETE", "/v1/suppressions/a@example.com", 404},
		{"events need events:read", reader, "GET", "/v1/events", 403},
		{"admin carries every scope", admin, "GET", "/v1/events", 200},
		{"policy needs policy:write", reader, "PUT", "/v1/policy", 403},
		{"any key reads the policy", writer, "GET", "/v1/policy", 200},
		{"health is public", "", "GET", "/healthz", 200},
		{"metrics are public", "", "GET", "/metrics", 200},
		{"codes are public", "", "GET", "/v1/codes/550", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.doAs(tt.token, tt.method, tt.path, "", nil, false)
			if r.status != tt.status {
				t.Fatalf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.status)
			}
			if tt.status >= 400 {
				problemOf(t, r, tt.status)
			}
			if tt.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
		})
	}
	// Manual changes name the key that made them.
	h.token = admin
	h.do("POST", "/v1/suppressions", "application/json", []byte(`{"email":"who@example.com","note":"asked"}`), true)
	var s store.Suppression
	h.get("/v1/suppressions/who@example.com").json(t, &s)
	if s.CreatedBy != "root" || s.Note != "asked" {
		t.Errorf("entry created_by %q note %q, want root and the note", s.CreatedBy, s.Note)
	}
}

func TestAuthModes(t *testing.T) {
	t.Parallel()
	const adminKey = "config-admin-key-0123456789abcdef"
	on := newHarness(t, api.Options{Auth: api.AuthOn})
	problemOf(t, on.doAs("", "GET", "/v1/suppressions", "", nil, false), 401)
	cfg := newHarness(t, api.Options{AdminKey: adminKey})
	problemOf(t, cfg.doAs("", "GET", "/v1/suppressions", "", nil, false), 401)
	if r := cfg.doAs(adminKey, "PATCH", "/v1/policy", "application/merge-patch+json", []byte(`{"soft_threshold":4}`), true, "If-Match", `"0"`); r.status != 200 {
		t.Errorf("PATCH /v1/policy with the configured admin key = %d %s", r.status, r.body)
	}
	var p store.Policy
	cfg.doAs(adminKey, "GET", "/v1/policy", "", nil, true).json(t, &p)
	if p.UpdatedBy != api.ConfigAdminName || p.SoftThreshold != 4 {
		t.Errorf("policy = %+v, want updated by %s", p, api.ConfigAdminName)
	}
	off := newHarness(t, api.Options{Auth: api.AuthOff})
	off.key("k", "", store.KeyAdmin)
	if r := off.doAs("", "GET", "/v1/suppressions", "", nil, false); r.status != 200 {
		t.Errorf("auth off, no key = %d, want 200", r.status)
	}
	if _, err := api.New(api.Deps{}, api.Options{Auth: "maybe"}); err == nil {
		t.Error("api.New(auth maybe) succeeded")
	}
}

// TestTenantIsolation: a key bound to tenant A never sees or changes
// tenant B's entries, events, state or stats, and cannot act on every
// tenant; it still sees global entries when it checks.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	scopes := []store.KeyScope{store.KeySuppressionsRead, store.KeySuppressionsWrite, store.KeyEventsRead, store.KeyEventsWrite, store.KeyPolicyWrite}
	a := h.key("tenant-a", "a", scopes...)
	b := h.key("tenant-b", "b", scopes...)
	admin := h.key("admin", "", store.KeyAdmin)
	add := func(token, body string) {
		t.Helper()
		if r := h.doAs(token, "POST", "/v1/suppressions", "application/json", []byte(body), true); r.status != 201 {
			t.Fatalf("add %s = %d %s", body, r.status, r.body)
		}
	}
	add(a, `{"email":"shared@example.com"}`)
	add(a, `{"email":"news@example.com","scope":"list:news"}`)
	add(b, `{"email":"bee@example.com"}`)
	add(admin, `{"email":"global@example.com"}`)

	// A's entries live in A's namespace.
	var page struct{ Items []store.Suppression }
	h.doAs(a, "GET", "/v1/suppressions", "", nil, true).json(t, &page)
	var got []string
	for _, s := range page.Items {
		got = append(got, s.Email+"@"+s.Scope)
	}
	if strings.Join(got, " ") != "news@example.com@tenant:a/list:news shared@example.com@tenant:a" {
		t.Errorf("tenant a lists %v", got)
	}
	tests := []struct {
		name, token, method, path string
		status                    int
	}{
		{"a checks its own entry", a, "GET", "/v1/suppressions/shared@example.com", 200},
		{"a checks its list, sees it", a, "GET", "/v1/suppressions/news@example.com?scope=list:news", 200},
		{"a sees the global list when checking", a, "GET", "/v1/suppressions/global@example.com", 200},
		{"b does not see a's entry", b, "GET", "/v1/suppressions/shared@example.com", 404},
		{"b cannot name a's scope", b, "GET", "/v1/suppressions/shared@example.com?scope=tenant:a", 403},
		{"b cannot list a's tenant", b, "GET", "/v1/suppressions?tenant=a", 403},
		{"b cannot delete a's entry", b, "DELETE", "/v1/suppressions/shared@example.com?scope=tenant:a", 403},
		{"b's delete in its own namespace finds nothing", b, "DELETE", "/v1/suppressions/shared@example.com", 404},
		{"b cannot delete the global entry", b, "DELETE", "/v1/suppressions/global@example.com?scope=global", 404},
		{"b cannot read raw messages", b, "GET", "/v1/messages/1", 403},
		{"b cannot change the global policy", b, "PUT", "/v1/policy", 403},
		{"b cannot patch the global policy", b, "PATCH", "/v1/policy", 403},
		{"b cannot see a's recipient state", b, "GET", "/v1/recipients/shared@example.com?tenant=a", 403},
		{"b sees nothing of the address", b, "GET", "/v1/recipients/shared@example.com", 404},
		{"b cannot read a's stats", b, "GET", "/v1/stats?tenant=a", 403},
		{"admin sees a's entry in a's scope", admin, "GET", "/v1/suppressions/shared@example.com?scope=tenant:a", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.doAs(tt.token, tt.method, tt.path, "", nil, false)
			if r.status != tt.status {
				t.Errorf("%s %s = %d %s, want %d", tt.method, tt.path, r.status, r.body, tt.status)
			}
		})
	}
	// Bulk check and bulk delete stay inside the tenant.
	var check struct{ Suppressed []store.Suppression }
	h.doAs(b, "POST", "/v1/suppressions/check", "application/json",
		[]byte(`{"emails":["shared@example.com","news@example.com","bee@example.com","global@example.com"]}`), true).json(t, &check)
	var hits []string
	for _, s := range check.Suppressed {
		hits = append(hits, s.Email)
	}
	if strings.Join(hits, " ") != "bee@example.com global@example.com" {
		t.Errorf("tenant b bulk check = %v, want its own and the global entry", hits)
	}
	if r := h.doAs(b, "DELETE", "/v1/suppressions?email_prefix=&since=2000-01-01T00:00:00Z&confirm=true", "", nil, true); r.status != 200 || !strings.Contains(string(r.body), `"deleted":1`) {
		t.Errorf("tenant b bulk delete = %d %s, want only its one entry", r.status, r.body)
	}
	if r := h.doAs(a, "GET", "/v1/suppressions/shared@example.com", "", nil, true); r.status != 200 {
		t.Errorf("a's entry after b's bulk delete = %d", r.status)
	}
	if r := h.doAs(admin, "GET", "/v1/suppressions/global@example.com", "", nil, true); r.status != 200 {
		t.Errorf("global entry after b's bulk delete = %d", r.status)
	}
	// Events: a sees its own adds only.
	var evs struct{ Items []store.Event }
	h.doAs(a, "GET", "/v1/events", "", nil, true).json(t, &evs)
	for _, e := range evs.Items {
		if store.TenantOf(e.Scope) != "a" {
			t.Errorf("tenant a sees event %+v", e)
		}
	}
	if len(evs.Items) != 2 {
		t.Errorf("tenant a sees %d events, want its 2", len(evs.Items))
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{RateLimit: 1, RateBurst: 3})
	token := h.key("slow", "", store.KeySuppressionsRead)
	other := h.key("other", "", store.KeySuppressionsRead)
	for i := range 3 {
		if r := h.doAs(token, "GET", "/v1/suppressions", "", nil, true); r.status != 200 {
			t.Fatalf("request %d within the burst = %d", i+1, r.status)
		}
	}
	r := h.doAs(token, "GET", "/v1/suppressions", "", nil, true)
	problemOf(t, r, 429)
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After %q, want a positive number of seconds", r.header.Get("Retry-After"))
	}
	// Limits are per key.
	if r := h.doAs(other, "GET", "/v1/suppressions", "", nil, true); r.status != 200 {
		t.Errorf("another key = %d, want 200", r.status)
	}
	// A key's own limit wins over the default.
	fast := 1000.0
	_, tok, err := h.db.CreateAPIKey(context.Background(), store.NewAPIKey{Name: "fast", Scopes: []store.KeyScope{store.KeySuppressionsRead}, RateLimit: &fast})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if r := h.doAs(tok, "GET", "/v1/suppressions", "", nil, true); r.status != 200 {
			t.Fatalf("request %d of a key allowed 1000/s = %d", i+1, r.status)
		}
	}
}

// TestEveryRouteHasAnAccessRule: a route added without a rule needs an
// admin key, never nothing; this lists the routes so none is forgotten.
func TestEveryRouteHasAnAccessRule(t *testing.T) {
	t.Parallel()
	s, err := api.New(api.Deps{}, api.Options{Auth: api.AuthOn})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, s)
	err = chi.Walk(s.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		public := map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/v1/codes": true, "/v1/codes/{code}": true}
		if public[route] || strings.HasPrefix(route, "/v1/webhooks/") {
			return nil
		}
		path := strings.NewReplacer("{email}", "a@example.com", "{id}", "1").Replace(route)
		req, _ := http.NewRequest(method, srv+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("%s %s without a key = %d, want 401", method, route, resp.StatusCode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPolicyMetrics: active suppressions are exported by reason and scope
// kind, never by address or raw scope name.
func TestPolicyMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	h.do("POST", "/v1/suppressions", "application/json", []byte(`{"items":[{"email":"m1@example.com"},{"email":"m2@example.com","scope":"list:secret-campaign"},{"email":"m3@example.com","scope":"tenant:acme/list:x","reason":"unsubscribe"}]}`), true)
	h.do("DELETE", "/v1/suppressions/m1@example.com", "", nil, true)
	h.do("POST", "/v1/suppressions", "application/json", []byte(`{"email":"m4@example.com"}`), true)
	r := h.get("/metrics")
	for _, want := range []string{
		`bounced_suppressions_active{reason="manual",scope_kind="global"} 1`,
		`bounced_suppressions_active{reason="manual",scope_kind="list"} 1`,
		`bounced_suppressions_active{reason="unsubscribe",scope_kind="list"} 1`,
		`bounced_suppressions_added_total{reason="manual",scope_kind="global"} 2`,
		`bounced_suppressions_added_total{reason="manual",scope_kind="list"} 1`,
		`bounced_suppressions_added_total{reason="unsubscribe",scope_kind="list"} 1`,
		`bounced_suppressions_removed_total{reason="manual",scope_kind="global"} 1`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, never := range []string{"example.com", "secret-campaign", "acme"} {
		if strings.Contains(string(r.body), never) {
			t.Errorf("/metrics exposes %q", never)
		}
	}
}
