package api_test

import (
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/api"
	bconfig "github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/ingest/webhook/webhooktest"
	"github.com/bounced/bounced/internal/store"
)

// TestIncomingEventsPerTenant: over real HTTP, events received with
// webhook credentials bound to a tenant, or naming a message a tenant
// reported sent, are that tenant's: its key sees them, their stats and
// their suppressions, another tenant's key sees none of them, and a bad
// scope in the generic webhook is answered 422, never recorded as global.
func TestIncomingEventsPerTenant(t *testing.T) {
	t.Parallel()
	acmeKit, err := webhooktest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(acmeKit.Close)
	h, kit := webhookHarness(t, api.Options{}, "", func(c *bconfig.Webhooks) {
		c.Tenants = map[string]map[string]bconfig.ProviderSettings{"acme": {webhook.Generic: {"secrets": {acmeKit.Keys.Secret}}}}
	})
	scopes := []store.KeyScope{store.KeyEventsRead, store.KeyEventsWrite, store.KeySuppressionsRead}
	acme := h.key("acme", "acme", scopes...)
	globex := h.key("globex", "globex", scopes...)
	admin := h.key("admin", "", store.KeyAdmin)

	sent := func(token, body string, want int) {
		t.Helper()
		if r := h.doAs(token, "POST", "/v1/sent", "application/json", []byte(body), true); r.status != want {
			t.Errorf("POST /v1/sent %s = %d %s, want %d", body, r.status, r.body, want)
		}
	}
	sent(globex, `{"messages":[{"message_id":"<g1@globex.example>","scope":"list:promo"}]}`, 202)
	sent(globex, `{"messages":[{"message_id":"<g2@globex.example>","scope":"tenant:acme"}]}`, 403)
	sent(globex, `{"messages":[{"message_id":"<g3@globex.example>","scope":"list promo"}]}`, 400)

	post := func(k *webhooktest.Kit, payload string, want int) response {
		t.Helper()
		body, hdr := k.Request(webhook.Generic, []byte(payload))
		r := h.send("POST", "/v1/webhooks/generic", hdr, body, true)
		if r.status != want {
			t.Errorf("generic %s = %d %s, want %d", payload, r.status, r.body, want)
		}
		return r
	}
	post(acmeKit, `{"recipient":"ann@example.com","status":"5.1.1","id":"a1"}`, 200)
	post(kit, `{"recipient":"gil@example.com","status":"5.1.1","id":"g1","original_message_id":"<g1@globex.example>"}`, 200)
	post(kit, `{"recipient":"pub@example.com","status":"5.1.1","id":"p1"}`, 200)
	if r := post(kit, `{"recipient":"bad@example.com","status":"5.1.1","id":"b1","scope":"list bad"}`, 422); !strings.Contains(string(r.body), "scope") {
		t.Errorf("bad scope answered %s, want the scope named", r.body)
	}
	post(acmeKit, `{"recipient":"bad@example.com","status":"5.1.1","id":"b2","scope":"tenant:globex"}`, 422)

	events := func(token, query string) []string {
		t.Helper()
		var page struct{ Items []store.Event }
		h.doAs(token, "GET", "/v1/events"+query, "", nil, true).json(t, &page)
		var out []string
		for _, e := range page.Items {
			out = append(out, e.Address+"@"+e.Scope)
		}
		return out
	}
	if got := strings.Join(events(acme, ""), " "); got != "ann@example.com@tenant:acme" {
		t.Errorf("acme's events = %q, want its one bounce", got)
	}
	if got := strings.Join(events(globex, ""), " "); got != "gil@example.com@tenant:globex/list:promo" {
		t.Errorf("globex's events = %q, want its one bounce on list:promo", got)
	}
	if got := events(admin, "?tenant="); strings.Join(got, " ") != "pub@example.com@global" {
		t.Errorf("untenanted events = %q, want the unbound, unmatched one only (bad scopes recorded nothing)", got)
	}
	if r := h.doAs(acme, "GET", "/v1/events?tenant=globex", "", nil, false); r.status != 403 {
		t.Errorf("acme asking for globex's events = %d, want 403", r.status)
	}

	hard := func(token string) int64 {
		t.Helper()
		var st struct{ Items []store.StatsRow }
		h.doAs(token, "GET", "/v1/stats?bucket=day", "", nil, true).json(t, &st)
		var n int64
		for _, row := range st.Items {
			n += row.Hard
		}
		return n
	}
	if a, g, all := hard(acme), hard(globex), hard(admin); a != 1 || g != 1 || all != 3 {
		t.Errorf("hard bounces in stats: acme %d, globex %d, admin %d; want 1, 1, 3", a, g, all)
	}

	for _, tc := range []struct {
		token, path string
		want        int
	}{
		{acme, "/v1/suppressions/ann@example.com", 200},
		{globex, "/v1/suppressions/ann@example.com", 404},
		{admin, "/v1/suppressions/ann@example.com?scope=global", 404},
		{globex, "/v1/suppressions/gil@example.com?scope=list:promo", 200},
		{acme, "/v1/suppressions/gil@example.com", 404},
		{acme, "/v1/suppressions/pub@example.com", 200}, // global: every tenant sees it
	} {
		if r := h.doAs(tc.token, "GET", tc.path, "", nil, true); r.status != tc.want {
			t.Errorf("GET %s = %d, want %d", tc.path, r.status, tc.want)
		}
	}
}
