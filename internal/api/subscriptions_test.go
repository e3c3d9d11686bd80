package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/push"
	"github.com/bounced/bounced/internal/store"
)

// hookReceiver is a real HTTP receiver of outbound webhooks that
// verifies each delivery's signature with its secret, as a subscriber
// does, and keeps what verified.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	got    []hookDelivery
	bad    []string
}

type hookDelivery struct {
	id      string
	payload struct {
		Type string       `json:"type"`
		Data store.Change `json:"data"`
	}
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	rcv := &hookReceiver{}
	rcv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		if err == nil {
			err = push.Verify(rcv.secret, r.Header, body, time.Now(), 5*time.Minute)
		}
		if err != nil {
			rcv.bad = append(rcv.bad, err.Error())
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var d hookDelivery
		d.id = r.Header.Get("webhook-id")
		if err := json.Unmarshal(body, &d.payload); err != nil {
			rcv.bad = append(rcv.bad, err.Error())
		}
		rcv.got = append(rcv.got, d)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rcv.srv.Close)
	return rcv
}

func (r *hookReceiver) deliveries() ([]hookDelivery, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookDelivery(nil), r.got...), append([]string(nil), r.bad...)
}

// runDeliverer runs a deliverer over the harness's database until the
// test ends.
func runDeliverer(t *testing.T, h *harness) {
	t.Helper()
	d, err := push.New(h.db, push.Options{AllowPrivate: true, PollInterval: 20 * time.Millisecond,
		BackoffBase: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSubscriptionsLifecycle: an admin key subscribes a real receiver,
// a suppression added over the API arrives signed, the subscription and
// its deliveries show how it went, a replay sends it again with the same
// webhook-id, and the subscription is turned off and deleted. Other keys
// may not touch subscriptions.
func TestSubscriptionsLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{OutboundAllowPrivate: true})
	admin := h.key("admin", "", store.KeyAdmin)
	writer := h.key("writer", "", store.KeySuppressionsRead, store.KeySuppressionsWrite)
	tenantAdmin := h.key("tenant-admin", "acme", store.KeyAdmin)
	h.token = admin
	rcv := newHookReceiver(t)

	body := fmt.Sprintf(`{"url":%q,"event_types":["suppression_added"],"description":"crm sync"}`, rcv.srv.URL+"/hooks")
	if r := h.doAs(writer, "POST", "/v1/subscriptions", "application/json", []byte(body), true); r.status != 403 {
		t.Errorf("a key without admin: %d, want 403", r.status)
	}
	if r := h.doAs(tenantAdmin, "GET", "/v1/subscriptions", "", nil, true); r.status != 403 {
		t.Errorf("a tenant's key: %d, want 403", r.status)
	}
	for _, bad := range []struct{ body, param string }{
		{`{"url":"ftp://example.com/x"}`, "url"},
		{`{}`, "url"},
		{fmt.Sprintf(`{"url":%q,"event_types":["delivery"]}`, rcv.srv.URL), "event_types"},
		{fmt.Sprintf(`{"url":%q,"secret":"whsec_short"}`, rcv.srv.URL), "secret"},
		{fmt.Sprintf(`{"url":%q,"scopes":["tenant:acme/"]}`, rcv.srv.URL), "scopes"},
		{fmt.Sprintf(`{"url":%q,"tenant":"acme","scopes":["tenant:other/x"]}`, rcv.srv.URL), ""}, // 403
	} {
		r := h.do("POST", "/v1/subscriptions", "application/json", []byte(bad.body), false)
		if r.status != 400 && r.status != 403 {
			t.Errorf("%s: %d %s, want 400", bad.body, r.status, r.body)
			continue
		}
		if p := problemOf(t, r, r.status); bad.param != "" && p["param"] != bad.param {
			t.Errorf("%s: param %v, want %s", bad.body, p["param"], bad.param)
		}
	}

	r := h.do("POST", "/v1/subscriptions", "application/json", []byte(body), true)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var created struct {
		store.Subscription
		Secret string `json:"secret"`
	}
	r.json(t, &created)
	if !strings.HasPrefix(created.Secret, "whsec_") || r.header.Get("Location") != fmt.Sprintf("/v1/subscriptions/%d", created.ID) {
		t.Fatalf("created %s with Location %q", r.body, r.header.Get("Location"))
	}
	rcv.mu.Lock()
	rcv.secret = created.Secret
	rcv.mu.Unlock()

	// The secret is shown once: never in a GET or a list.
	if r := h.get(fmt.Sprintf("/v1/subscriptions/%d", created.ID)); r.status != 200 || strings.Contains(string(r.body), created.Secret) {
		t.Errorf("GET: %d %s (must not show the secret)", r.status, r.body)
	}
	r = h.get("/v1/subscriptions?total=true")
	var list struct {
		Items []store.Subscription `json:"items"`
		Total *int64               `json:"total"`
	}
	r.json(t, &list)
	if len(list.Items) != 1 || list.Total == nil || *list.Total != 1 || strings.Contains(string(r.body), created.Secret) {
		t.Errorf("list: %s", r.body)
	}
	if r := h.get("/v1/subscriptions?limt=5"); r.status != 400 {
		t.Errorf("an unknown parameter: %d, want 400", r.status)
	}

	runDeliverer(t, h)
	if r := h.do("POST", "/v1/suppressions", "application/json", []byte(`{"email":"gone@example.com"}`), true); r.status/100 != 2 {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	waitUntil(t, "the change to arrive", func() bool { got, _ := rcv.deliveries(); return len(got) >= 1 })
	got, bad := rcv.deliveries()
	if len(bad) > 0 {
		t.Errorf("deliveries that did not verify: %q", bad)
	}
	if got[0].payload.Type != "suppression_added" || got[0].payload.Data.Email != "gone@example.com" ||
		got[0].id != fmt.Sprint(got[0].payload.Data.ID) {
		t.Errorf("delivered %+v", got[0])
	}

	var page struct {
		Items []store.Delivery `json:"items"`
		Total *int64           `json:"total"`
	}
	waitUntil(t, "the delivery to be settled", func() bool {
		r := h.get(fmt.Sprintf("/v1/subscriptions/%d/deliveries?total=true", created.ID))
		r.json(t, &page)
		return len(page.Items) == 1 && page.Items[0].State == store.DeliveryDelivered
	})
	d := page.Items[0]
	if d.Attempts != 1 || d.LastStatus == nil || *d.LastStatus != 204 || d.NextAttemptAt != nil || d.DeliveredAt == nil ||
		d.ChangeType != store.ChangeSuppressionAdded || page.Total == nil || *page.Total != 1 {
		t.Errorf("delivery %+v, total %v", d, page.Total)
	}
	var sub store.Subscription
	h.get(fmt.Sprintf("/v1/subscriptions/%d", created.ID)).json(t, &sub)
	if sub.LastStatus == nil || *sub.LastStatus != 204 || sub.LastSuccessAt == nil || sub.Pending != 0 || sub.Dead != 0 {
		t.Errorf("subscription after delivering: %+v", sub)
	}
	if r := h.do("GET", fmt.Sprintf("/v1/subscriptions/%d/deliveries?state=lost", created.ID), "", nil, false); r.status != 400 {
		t.Errorf("a bad state: %d, want 400", r.status)
	}

	// A replay sends the same change again, with the same webhook-id.
	r = h.do("POST", fmt.Sprintf("/v1/subscriptions/%d/deliveries/%d/replay", created.ID, d.ID), "", nil, true)
	if r.status != 202 {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	waitUntil(t, "the replay to arrive", func() bool { got, _ := rcv.deliveries(); return len(got) >= 2 })
	got, _ = rcv.deliveries()
	if got[1].id != got[0].id {
		t.Errorf("the replay's webhook-id is %s, the first's %s", got[1].id, got[0].id)
	}
	if r := h.do("POST", fmt.Sprintf("/v1/subscriptions/%d/deliveries/%d/replay", created.ID, d.ID+1000), "", nil, true); r.status != 404 {
		t.Errorf("replaying a delivery that does not exist: %d, want 404", r.status)
	}

	// Removals are not among its types: nothing is delivered for them.
	if r := h.do("DELETE", "/v1/suppressions/gone@example.com", "", nil, true); r.status/100 != 2 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	r = h.do("PATCH", fmt.Sprintf("/v1/subscriptions/%d", created.ID), "application/json", []byte(`{"enabled":false}`), true)
	h.get(fmt.Sprintf("/v1/subscriptions/%d", created.ID)).json(t, &sub)
	if r.status != 200 || sub.Enabled || !strings.Contains(sub.DisabledReason, "admin") {
		t.Errorf("turned off: %d %+v", r.status, sub)
	}
	if r := h.do("PATCH", fmt.Sprintf("/v1/subscriptions/%d", created.ID), "application/json", []byte(`{"tenant":"acme"}`), true); r.status != 400 {
		t.Errorf("moving to another tenant: %d, want 400", r.status)
	}
	if r := h.do("DELETE", fmt.Sprintf("/v1/subscriptions/%d", created.ID), "", nil, true); r.status != 204 {
		t.Errorf("delete: %d", r.status)
	}
	if r := h.get(fmt.Sprintf("/v1/subscriptions/%d", created.ID)); r.status != 404 {
		t.Errorf("after delete: %d, want 404", r.status)
	}
	if got, _ := rcv.deliveries(); len(got) != 2 {
		t.Errorf("%d deliveries arrived, want 2 (no removal was subscribed)", len(got))
	}
}

// TestSubscriptionsRefusePrivateDestinations: unless allowed, a
// subscription may not point at loopback or private addresses.
func TestSubscriptionsRefusePrivateDestinations(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	for _, u := range []string{"http://127.0.0.1:9/hooks", "http://10.1.2.3/hooks", "http://[::1]/hooks", "http://localhost/x"} {
		r := h.do("POST", "/v1/subscriptions", "application/json", []byte(fmt.Sprintf(`{"url":%q}`, u)), true)
		if p := problemOf(t, r, 400); p["param"] != "url" {
			t.Errorf("%s: %v", u, p)
		}
	}
}
