package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/store"
)

// sseStream is a real Server-Sent Events client: it reads the stream as
// the HTML spec parses it (fields by line, an event at each blank line,
// comments apart).
type sseStream struct {
	cancel     context.CancelFunc
	events     chan sseEvent
	comments   atomic.Int64
	retry      atomic.Int64
	contenType string
}

type sseEvent struct {
	id, event string
	payload   struct {
		Type string       `json:"type"`
		Data store.Change `json:"data"`
	}
}

// openStream opens GET url as token, resuming after lastID when set; it
// fails the test unless the answer is 200 text/event-stream.
func openStream(t *testing.T, url, token, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	// A stream its client just closed holds its slot until the server
	// notices; a 503 with Retry-After is the server asking to come back, so
	// the test does what a client should and tries again for a while.
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || time.Now().After(deadline) {
			break
		}
		resp.Body.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if resp.StatusCode != 200 {
		cancel()
		resp.Body.Close()
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	s := &sseStream{cancel: cancel, events: make(chan sseEvent, 1000), contenType: resp.Header.Get("Content-Type")}
	t.Cleanup(cancel)
	go func() {
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data []string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if len(data) > 0 {
					if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &ev.payload); err != nil {
						ev.event = "undecodable: " + err.Error()
					}
					s.events <- ev
				}
				ev, data = sseEvent{}, nil
			case strings.HasPrefix(line, ":"):
				s.comments.Add(1)
			default:
				field, value, _ := strings.Cut(line, ":")
				value = strings.TrimPrefix(value, " ")
				switch field {
				case "id":
					ev.id = value
				case "event":
					ev.event = value
				case "data":
					data = append(data, value)
				case "retry":
					var ms int64
					fmt.Sscan(value, &ms)
					s.retry.Store(ms)
				}
			}
		}
	}()
	return s
}

// take reads n events, failing the test if they do not come in time.
func (s *sseStream) take(t *testing.T, n int) []sseEvent {
	t.Helper()
	var out []sseEvent
	timeout := time.After(20 * time.Second)
	for len(out) < n {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("the stream ended after %d of %d events", len(out), n)
			}
			out = append(out, ev)
		case <-timeout:
			t.Fatalf("got %d of %d events in time", len(out), n)
		}
	}
	return out
}

// TestStreamResumesWithoutGapsOrRepeats: a real SSE client over HTTP
// reads changes as they happen, outlives the server's read and write
// timeouts on heartbeats, disconnects, and resumes with Last-Event-ID
// getting exactly the changes it missed; after=0 replays the whole feed
// in the same order; a tenant's key sees its own tenant's changes; the
// number of streams is bounded; shutdown ends streams.
func TestStreamResumesWithoutGapsOrRepeats(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{StreamHeartbeat: 100 * time.Millisecond, StreamMax: 2})
	reader := h.key("reader", "", store.KeySuppressionsRead)
	acme := h.key("acme", "acme", store.KeySuppressionsRead)
	h.token = reader
	// A server whose request timeouts are far shorter than a stream.
	ts := httptest.NewUnstartedServer(h.api)
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	ts.Start()
	t.Cleanup(ts.Close)
	ctx := context.Background()
	add := func(scope string, emails ...string) {
		t.Helper()
		items := make([]store.NewSuppression, len(emails))
		for i, e := range emails {
			items[i] = store.NewSuppression{Email: e, Scope: scope, Reason: store.ReasonManual}
		}
		if _, err := h.db.AddSuppressions(ctx, items, "test", "api"); err != nil {
			t.Fatal(err)
		}
	}

	// A change before the stream opens is not sent: it starts at the head.
	add("", "before@example.com")
	a := openStream(t, ts.URL+"/v1/stream", reader, "")
	waitUntil(t, "the stream's first comment", func() bool { return a.comments.Load() > 0 })
	if a.contenType != "text/event-stream" || a.retry.Load() != 2000 {
		t.Errorf("Content-Type %q, retry %d", a.contenType, a.retry.Load())
	}
	add("", "a1@example.com", "a2@example.com", "a3@example.com")
	add("tenant:acme", "acme1@example.com")
	// The head is the oldest transaction still running in the whole
	// cluster (the feed is at least once): while another test's
	// transaction is open, "before" may come first. It must never come
	// after the changes made once the stream was open.
	seen := a.take(t, 1)
	if seen[0].payload.Data.Email == "before@example.com" {
		seen = nil
	}
	seen = append(seen, a.take(t, 4-len(seen))...)
	// Idle for longer than the server's timeouts: heartbeats keep it up.
	comments := a.comments.Load()
	time.Sleep(700 * time.Millisecond)
	if a.comments.Load() < comments+3 {
		t.Errorf("%d heartbeats in 700ms at one per 100ms", a.comments.Load()-comments)
	}
	add("", "a4@example.com")
	seen = append(seen, a.take(t, 1)...)
	a.cancel()

	// Missed while disconnected: added and removed.
	add("", "b1@example.com", "b2@example.com")
	if _, err := h.db.DeleteSuppression(ctx, "a1@example.com", "global", "test", "mistake"); err != nil {
		t.Fatal(err)
	}
	b := openStream(t, ts.URL+"/v1/stream", reader, seen[len(seen)-1].id)
	seen = append(seen, b.take(t, 3)...)
	add("", "b3@example.com")
	seen = append(seen, b.take(t, 1)...)
	select {
	case ev := <-b.events:
		t.Errorf("an event more than the changes: %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}

	// The order is the feed's (the order of the changes' transactions,
	// checked against want below), not the ids': change ids are taken
	// from a sequence cached per database connection (migration 00030),
	// so one connection's later change can have a smaller id than
	// another's earlier one.
	var got []string
	ids := map[string]bool{}
	for _, ev := range seen {
		if ids[ev.id] {
			t.Errorf("event %s twice", ev.id)
		}
		ids[ev.id] = true
		if ev.id != fmt.Sprint(ev.payload.Data.ID) || ev.event != ev.payload.Type {
			t.Errorf("event id %s type %s for change %d %s", ev.id, ev.event, ev.payload.Data.ID, ev.payload.Type)
		}
		got = append(got, ev.payload.Type+" "+ev.payload.Data.Email)
	}
	want := []string{"suppression_added a1@example.com", "suppression_added a2@example.com", "suppression_added a3@example.com",
		"suppression_added acme1@example.com", "suppression_added a4@example.com",
		"suppression_added b1@example.com", "suppression_added b2@example.com", "suppression_removed a1@example.com",
		"suppression_added b3@example.com"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// after=0: the whole feed kept, in the same order, and nothing more.
	all := openStream(t, ts.URL+"/v1/stream?after=0", reader, "")
	replay := all.take(t, 10)
	if replay[0].payload.Data.Email != "before@example.com" {
		t.Errorf("after=0 starts with %+v", replay[0])
	}
	for i, ev := range replay[1:] {
		if ev.id != seen[i].id {
			t.Errorf("after=0: event %d is %s, the live stream's was %s", i+1, ev.id, seen[i].id)
		}
	}
	// A third stream is one too many while two are open.
	// (The first stream, closed by its client, may take a moment to end.)
	waitUntil(t, "a stream over the cap to be refused", func() bool {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/v1/stream", nil)
		req.Header.Set("Authorization", "Bearer "+reader)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "" &&
			resp.Header.Get("Content-Type") == "application/problem+json"
	})
	all.cancel()
	b.cancel()

	// A tenant's key sees its tenant's changes only.
	tenant := openStream(t, ts.URL+"/v1/stream?after=0", acme, "")
	if ev := tenant.take(t, 1)[0]; ev.payload.Data.Email != "acme1@example.com" || ev.payload.Data.Scope != "tenant:acme" {
		t.Errorf("the tenant's stream: %+v", ev)
	}
	select {
	case ev := <-tenant.events:
		t.Errorf("the tenant's stream has another tenant's change: %+v", ev)
	case <-time.After(300 * time.Millisecond):
	}

	for _, bad := range []struct{ path, lastID, param string }{
		{"/v1/stream?after=x", "", "after"},
		{"/v1/stream?after=999999", "", "after"},
		{"/v1/stream", "-1", "Last-Event-ID"},
		{"/v1/stream?type=delivery", "", "type"},
	} {
		var headers []string
		if bad.lastID != "" {
			headers = []string{"Last-Event-ID", bad.lastID}
		}
		r := h.doAs(reader, "GET", bad.path, "", nil, false, headers...)
		if p := problemOf(t, r, 400); p["param"] != bad.param {
			t.Errorf("%s %s: %v", bad.path, bad.lastID, p)
		}
	}
	if r := h.doAs(acme, "GET", "/v1/stream?tenant=other", "", nil, true); r.status != 403 {
		t.Errorf("a tenant's key naming another tenant: %d", r.status)
	}

	// Shutdown ends the streams open.
	h.api.CloseStreams()
	select {
	case _, ok := <-tenant.events:
		if ok {
			t.Error("an event after shutdown")
		}
	case <-time.After(5 * time.Second):
		t.Error("the stream is still open after CloseStreams")
	}
}
