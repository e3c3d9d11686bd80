package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/store"
)

func eventsOf(t *testing.T, db *store.DB, ids []int64) []store.Event {
	t.Helper()
	evs, _, err := db.ListEvents(context.Background(), store.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		for _, id := range ids {
			if ev.ID == id {
				out = append(out, ev)
			}
		}
	}
	return out
}

// TestTenantCredentials: every provider's fixture, signed with the
// credentials bound to acme, is read as acme's (summary and events in
// tenant:acme); signed with the unbound credentials it stays global.
func TestTenantCredentials(t *testing.T) {
	t.Parallel()
	acme := newKit(t)
	e := newEnv(t, func(c *config.Webhooks) {
		settings := webhook.TestSettings(acme.Keys)
		delete(settings, webhook.SES)
		c.Tenants = map[string]map[string]config.ProviderSettings{"acme": settings}
	})
	for _, provider := range webhook.Providers() {
		if provider == webhook.SES {
			continue
		}
		files, _ := filepath.Glob(filepath.Join("testdata", provider, "*.json"))
		for _, f := range files {
			if strings.HasSuffix(f, ".golden.json") {
				continue
			}
			name := filepath.Base(f)
			t.Run(provider+"/"+name, func(t *testing.T) {
				body, h := acme.Request(provider, payload(t, provider, name))
				out, err := e.receive(provider, body, h)
				if err != nil {
					t.Fatalf("Receive(signed for acme) = %v", err)
				}
				var sum webhook.Summary
				if err := json.Unmarshal(out.Message.Result, &sum); err != nil {
					t.Fatal(err)
				}
				if sum.Tenant != "acme" {
					t.Errorf("summary tenant %q, want acme", sum.Tenant)
				}
				for _, ev := range eventsOf(t, e.db, out.Message.EventIDs) {
					if store.TenantOf(ev.Scope) != "acme" {
						t.Errorf("event %d (%s) in %q, want in tenant acme", ev.ID, ev.Type, ev.Scope)
					}
				}
			})
		}
	}
	// The same provider, signed with the unbound credentials: global.
	body, h := e.kit.Request(webhook.Generic, []byte(`{"recipient":"unbound@example.com","status":"5.1.1","id":"unbound-1"}`))
	out, err := e.receive(webhook.Generic, body, h)
	if err != nil || out.Recorded != 1 {
		t.Fatalf("Receive(unbound) = %+v, %v", out, err)
	}
	if evs := eventsOf(t, e.db, out.Message.EventIDs); len(evs) != 1 || evs[0].Scope != "global" {
		t.Errorf("unbound event %+v, want in global", evs)
	}
	// Neither binding's: refused, and counted once.
	stranger := newKit(t)
	body, h = stranger.Request(webhook.Generic, []byte(`{"recipient":"x@example.com"}`))
	var rej *webhook.RejectError
	if _, err := e.receive(webhook.Generic, body, h); !errors.As(err, &rej) {
		t.Errorf("Receive(unknown key) = %v, want a RejectError", err)
	}
}

// TestGenericScopeAndSentAttribution: the generic webhook's scope field
// is validated as scopes are and placed inside the bound tenant; a scope
// the tenant may not use, or a malformed one, is stored unread (422),
// never recorded as global; without a scope, a Message-ID reported sent
// gives the event its tenant and list, unless the credentials are bound
// to another tenant.
func TestGenericScopeAndSentAttribution(t *testing.T) {
	t.Parallel()
	acme := newKit(t)
	e := newEnv(t, func(c *config.Webhooks) {
		c.Tenants = map[string]map[string]config.ProviderSettings{"acme": {webhook.Generic: {"secrets": {acme.Keys.Secret}}}}
	})
	ctx := context.Background()
	if err := e.db.RecordSentMessages(ctx, "globex", []store.SentMessage{{MessageID: "<g1@globex.example>", Scope: "tenant:globex/list:promo"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body string
		acme       bool
		scope      string // "" : not read
	}{
		{name: "a named list inside the bound tenant", acme: true,
			body: `{"recipient":"a@example.com","status":"5.1.1","scope":"list:news"}`, scope: "tenant:acme/list:news"},
		{name: "global named by a bound credential is its tenant", acme: true,
			body: `{"recipient":"b@example.com","status":"5.1.1","scope":"global"}`, scope: "tenant:acme"},
		{name: "another tenant's scope is refused", acme: true,
			body: `{"recipient":"c@example.com","status":"5.1.1","scope":"tenant:globex"}`},
		{name: "a malformed scope is refused",
			body: `{"recipient":"d@example.com","status":"5.1.1","scope":"list news"}`},
		{name: "an unbound credential may name a tenant's list",
			body: `{"recipient":"e@example.com","status":"5.1.1","scope":"tenant:globex/list:x"}`, scope: "tenant:globex/list:x"},
		{name: "a Message-ID reported sent gives its list",
			body: `{"recipient":"f@example.com","status":"5.1.1","original_message_id":"<g1@globex.example>"}`, scope: "tenant:globex/list:promo"},
		{name: "a bound credential ignores another tenant's sent message", acme: true,
			body: `{"recipient":"g@example.com","status":"5.1.1","original_message_id":"<g1@globex.example>"}`, scope: "tenant:acme"},
		{name: "a named scope wins over the sent message",
			body: `{"recipient":"h@example.com","status":"5.1.1","original_message_id":"<g1@globex.example>","scope":"list:own"}`, scope: "list:own"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kit := e.kit
			if tc.acme {
				kit = acme
			}
			body, h := kit.Request(webhook.Generic, []byte(tc.body))
			out, err := e.receive(webhook.Generic, body, h)
			if err != nil {
				t.Fatalf("Receive() = %v", err)
			}
			if tc.scope == "" {
				if out.Message.ParseStatus != store.ParseFailed || !strings.Contains(out.Message.ParseError, "scope") || out.Recorded != 0 {
					t.Errorf("Receive() = %+v, want stored unread with a scope error", out.Message)
				}
				return
			}
			evs := eventsOf(t, e.db, out.Message.EventIDs)
			if len(evs) != 1 || evs[0].Scope != tc.scope {
				t.Fatalf("events %+v, want one in %q", evs, tc.scope)
			}
			// A hard bounce suppresses on its tenant's own list, never
			// on the global one unless it is global.
			got, err := e.db.CheckSuppressions(ctx, []string{evs[0].Address}, store.GlobalScope)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got[evs[0].Address]; ok != (store.TenantOf(tc.scope) == "") {
				t.Errorf("globally suppressed = %v, want %v", ok, store.TenantOf(tc.scope) == "")
			}
		})
	}
}
