package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/push"
)

// hookSite is a subscriber's real HTTP receiver on 127.0.0.1: it checks
// each delivery's Standard Webhooks signature and keeps each change once
// by its webhook-id, as a subscriber must (delivery is at least once).
type hookSite struct {
	t      *testing.T
	addr   string
	secret string
	mu     sync.Mutex
	srv    *http.Server
	byID   map[string]string // webhook-id: "type email"
	posts  int
	forged int
	// dieAt makes the receiver die while the dieAt-th request waits for
	// its answer (0: never).
	dieAt int
	died  chan struct{}
}

func (h *hookSite) start() {
	h.t.Helper()
	ln, err := net.Listen("tcp", h.addr)
	if err != nil {
		h.t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(h.serve), ReadHeaderTimeout: 5 * time.Second}
	h.mu.Lock()
	h.srv = srv
	h.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
	h.t.Cleanup(func() { _ = srv.Close() })
}

func (h *hookSite) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	h.mu.Lock()
	h.posts++
	if err := push.Verify(h.secret, r.Header, body, time.Now(), 5*time.Minute); err != nil {
		h.forged++
		h.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p struct {
		Type string `json:"type"`
		Data struct {
			Email string `json:"email"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		h.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Kept before answering: a receiver that dies now has the change, and
	// its redelivery is deduplicated.
	h.byID[r.Header.Get("webhook-id")] = p.Type + " " + p.Data.Email
	die := h.posts == h.dieAt
	srv := h.srv
	h.mu.Unlock()
	if die {
		// Killed mid-delivery: the connection drops with no answer.
		_ = srv.Close()
		close(h.died)
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookSite) changes() map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]string{}
	for id, c := range h.byID {
		out[id] = c
	}
	return out
}

// apiCall sends one request to a running bounced as the admin.
func apiCall(t *testing.T, method, url, admin string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+admin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// TestOutboundWebhooksSurviveRestarts: bounced serve pushes changes (a
// hard bounce, the suppression it caused, suppressions added by hand and
// removed) to a real receiver
// that verifies their signatures; the receiver is killed mid-delivery and
// started again, bounced is restarted while deliveries wait, and every
// change arrives at least once, none lost.
func TestOutboundWebhooksSurviveRestarts(t *testing.T) {
	t.Parallel()
	db := dbtest.URL(t)
	admin := "admin-key-for-the-push-test-0123456789"
	settings := env("BOUNCED_DATABASE_URL", db, "BOUNCED_ADMIN_KEY", admin, "BOUNCED_OUTBOUND_ALLOW_PRIVATE", "true",
		"BOUNCED_OUTBOUND_TIMEOUT", "2s", "BOUNCED_OUTBOUND_WORKERS", "2")
	rcv := &hookSite{t: t, addr: "127.0.0.1:0", byID: map[string]string{}, dieAt: 3, died: make(chan struct{})}
	rcv.start()

	base, stop := startServe(t, settings)
	status, body := apiCall(t, "POST", base+"/v1/subscriptions", admin, map[string]any{"url": "http://" + rcv.addr + "/hooks"})
	if status != 201 {
		t.Fatalf("subscribe: %d %s", status, body)
	}
	var sub struct {
		ID     int64  `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(body, &sub); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	rcv.secret = sub.Secret
	rcv.mu.Unlock()

	want := map[string]bool{}
	add := func(base string, from, to int) {
		t.Helper()
		var items []map[string]string
		for i := from; i < to; i++ {
			e := fmt.Sprintf("u%d@example.com", i)
			items = append(items, map[string]string{"email": e})
			want["suppression_added "+e] = true
		}
		if status, body := apiCall(t, "POST", base+"/v1/suppressions", admin, map[string]any{"items": items}); status/100 != 2 {
			t.Fatalf("add: %d %s", status, body)
		}
	}
	for i := range 4 {
		add(base, i*5, i*5+5)
	}
	// A hard bounce suppresses its recipient: suppression_added.
	req, _ := http.NewRequest("POST", base+"/v1/messages", bytes.NewReader(dsntest.DSN("push-1", dsntest.Rcpt{Address: "bounced@example.org", Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 User unknown"})))
	req.Header.Set("Authorization", "Bearer "+admin)
	req.Header.Set("Content-Type", "message/rfc822")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("bounce: %d", resp.StatusCode)
	}
	want["bounce bounced@example.org"] = true
	want["suppression_added bounced@example.org"] = true

	// The receiver dies on the third delivery; bounced stops while the
	// rest wait for their next attempt.
	select {
	case <-rcv.died:
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got no third delivery")
	}
	if err := stop(); err != nil {
		t.Fatalf("stopping serve: %v", err)
	}
	rcv.start() // on the same address
	base, _ = startServe(t, settings)
	add(base, 20, 25)
	if status, body := apiCall(t, "DELETE", base+"/v1/suppressions/u3@example.com?note=mistake", admin, nil); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	want["suppression_removed u3@example.com"] = true

	deadline := time.Now().Add(90 * time.Second)
	for {
		got := map[string]bool{}
		for _, c := range rcv.changes() {
			got[c] = true
		}
		missing := 0
		for c := range want {
			if !got[c] {
				missing++
			}
		}
		if missing == 0 && len(got) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d changes arrived (missing %d): %v", len(got), len(want), missing, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rcv.mu.Lock()
	posts, forged, ids := rcv.posts, rcv.forged, len(rcv.byID)
	rcv.mu.Unlock()
	if forged != 0 || ids != len(want) || posts < ids+1 {
		t.Errorf("%d posts, %d not verified, %d distinct ids for %d changes (the one that died must have come again)", posts, forged, ids, len(want))
	}
	// The API shows every delivery delivered, the metrics the attempts.
	var s struct {
		Pending    int64 `json:"pending"`
		Dead       int64 `json:"dead"`
		LastStatus *int  `json:"last_status"`
	}
	for time.Now().Before(deadline) {
		_, body = apiCall(t, "GET", fmt.Sprintf("%s/v1/subscriptions/%d", base, sub.ID), admin, nil)
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		if s.Pending == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s.Pending != 0 || s.Dead != 0 || s.LastStatus == nil || *s.LastStatus != 204 {
		t.Errorf("subscription after delivering: %s", body)
	}
	status, metrics := apiCall(t, "GET", base+"/metrics", admin, nil)
	if status != 200 || !bytes.Contains(metrics, []byte(`bounced_outbound_attempts_total{outcome="delivered"}`)) ||
		!bytes.Contains(metrics, []byte(`bounced_outbound_deliveries{state="dead"} 0`)) {
		t.Errorf("/metrics lacks the outbound families:\n%s", grepLines(metrics, "bounced_outbound"))
	}
	if bytes.Contains(metrics, []byte(rcv.addr)) {
		t.Error("/metrics names the receiver")
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
