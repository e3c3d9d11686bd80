package api_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/ingest/webhook"
)

// TestBadBytesAre400: NUL bytes and invalid UTF-8 in query parameters or
// cursors are the client's mistake (400), never a database error (500).
func TestBadBytesAre400(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	badCursor := base64.RawURLEncoding.EncodeToString([]byte("email\x00\xff\xfe\x001"))
	badTimeCursor := base64.RawURLEncoding.EncodeToString([]byte("\xff.1"))
	for _, path := range []string{
		"/v1/suppressions?source=%00",
		"/v1/suppressions?source=%FF",
		"/v1/suppressions?email_prefix=a%00",
		"/v1/suppressions?email_prefix=%C3",
		"/v1/suppressions?sort=email&cursor=" + badCursor,
		"/v1/suppressions?sort=-email&cursor=" + badCursor,
		"/v1/suppressions?cursor=" + badTimeCursor,
		"/v1/suppressions?scope=list:%FF",
		"/v1/suppressions/user@example.com?scope=%00",
		"/v1/events?cursor=" + badTimeCursor,
		"/v1/events?type=%00",
		"/v1/stats?group_by=%FF",
	} {
		r := h.do("GET", path, "", nil, false)
		if r.status != http.StatusBadRequest {
			t.Errorf("GET %s = %d %s, want 400", path, r.status, r.body)
		}
	}
	r := h.do("DELETE", "/v1/suppressions?source=%FF&confirm=true", "", nil, false)
	if r.status != http.StatusBadRequest {
		t.Errorf("DELETE ?source=%%FF = %d %s, want 400", r.status, r.body)
	}
}

// TestWebhookEventIDWithNUL: a signed event whose id holds a NUL byte is
// stored (the id cleaned), not refused with a 500.
func TestWebhookEventIDWithNUL(t *testing.T) {
	t.Parallel()
	h, kit := webhookHarness(t, api.Options{}, "", nil)
	payload := []byte(`{"recipient":"nul@example.com","type":"bounce","status":"5.1.1","id":"a\u0000b"}`)
	body, hdr := kit.Request(webhook.Generic, payload)
	r := h.send("POST", "/v1/webhooks/generic", hdr, body, true)
	var a ack
	if r.status != http.StatusOK || json.Unmarshal(r.body, &a) != nil || a.EventsRecorded != 1 {
		t.Fatalf("POST generic event with id a\\u0000b = %d %s, want 200 with one event", r.status, r.body)
	}
	// The same id again, in another body, is the same event.
	body, hdr = kit.Request(webhook.Generic, []byte(`{"recipient":"nul@example.com","type":"bounce","status":"5.1.1","id":"a\u0000b","diagnostic":"again"}`))
	r = h.send("POST", "/v1/webhooks/generic", hdr, body, true)
	if r.status != http.StatusOK || json.Unmarshal(r.body, &a) != nil || a.EventsRecorded != 0 {
		t.Errorf("POST the same event id again = %d %s, want 200 with no event recorded", r.status, r.body)
	}
}
