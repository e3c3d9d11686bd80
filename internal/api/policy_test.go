package api_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// TestPolicyReplaceAndMergePatch: PUT replaces the whole policy and
// refuses a partial one naming what is missing (it once set the omitted
// soft_expiry_days to 0 and dropped the per-reason rules); PATCH changes
// only what a JSON Merge Patch names; both need If-Match or the version
// (version 0 once skipped the check), 428 without, 412 when stale.
func TestPolicyReplaceAndMergePatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	get := func() (store.Policy, string) {
		t.Helper()
		r := h.get("/v1/policy")
		var p store.Policy
		r.json(t, &p)
		return p, r.header.Get("ETag")
	}
	p, etag := get()
	if etag != `"0"` || p.Version != 0 {
		t.Fatalf("default policy ETag %q version %d, want \"0\"", etag, p.Version)
	}
	full := func(p store.Policy) []byte {
		b, _ := json.Marshal(p)
		return b
	}
	put := func(body []byte, status int, headers ...string) map[string]any {
		t.Helper()
		r := h.doAs(h.token, "PUT", "/v1/policy", "application/json", body, status == 200, headers...)
		if status == 200 {
			if r.status != 200 {
				t.Fatalf("PUT %s = %d %s", body, r.status, r.body)
			}
			return nil
		}
		return problemOf(t, r, status)
	}
	patch := func(body string, status int, headers ...string) (store.Policy, map[string]any) {
		t.Helper()
		r := h.doAs(h.token, "PATCH", "/v1/policy", "application/merge-patch+json", []byte(body), status == 200, headers...)
		if status != 200 {
			return store.Policy{}, problemOf(t, r, status)
		}
		if r.status != 200 {
			t.Fatalf("PATCH %s = %d %s", body, r.status, r.body)
		}
		var got store.Policy
		r.json(t, &got)
		if want := fmt.Sprintf(`"%d"`, got.Version); r.header.Get("ETag") != want {
			t.Errorf("PATCH ETag %q, want %s", r.header.Get("ETag"), want)
		}
		return got, nil
	}

	// A partial PUT is refused, naming every missing field; nothing changes.
	prob := put([]byte(`{"soft_threshold":2}`), 422, "If-Match", `"0"`)
	want := []any{"complaint_expiry_days", "complaint_scope", "hard_expiry_days", "reasons", "soft_expiry_days", "soft_window_days"}
	if fields, _ := prob["fields"].([]any); !slices.Equal(fields, want) || prob["param"] != "complaint_expiry_days" {
		t.Errorf("partial PUT problem %v, want fields %v", prob, want)
	}
	if now, _ := get(); now.SoftExpiryDays != 30 || len(now.Reasons) != 2 || now.Version != 0 {
		t.Errorf("after a refused partial PUT the policy is %+v, want the defaults", now)
	}
	null := `{"soft_threshold":3,"soft_window_days":14,"soft_expiry_days":null,"hard_expiry_days":0,"complaint_expiry_days":0,"complaint_scope":"global","reasons":{}}`
	if prob := put([]byte(null), 422, "If-Match", `"0"`); prob["param"] != "soft_expiry_days" {
		t.Errorf("PUT with a null field: %v", prob)
	}
	// No precondition: 428. With one: 200, ETag "1".
	p.SoftThreshold = 2
	noVersion, _ := json.Marshal(map[string]any{"soft_threshold": 2, "soft_window_days": 14, "soft_expiry_days": 30,
		"hard_expiry_days": 0, "complaint_expiry_days": 0, "complaint_scope": "global", "reasons": p.Reasons})
	if prob := put(noVersion, 428); prob["param"] != "If-Match" {
		t.Errorf("PUT without a precondition: %v", prob)
	}
	put(noVersion, 200, "If-Match", `"0"`)
	if p, etag = get(); etag != `"1"` || p.SoftThreshold != 2 || p.SoftExpiryDays != 30 {
		t.Fatalf("after PUT: ETag %q %+v", etag, p)
	}
	// Version 0 no longer skips the check; stale versions and tags fail.
	stale := p
	stale.Version = 0
	if prob := put(full(stale), 412); prob["param"] != "version" {
		t.Errorf("PUT version 0 over version 1: %v", prob)
	}
	if prob := put(full(stale), 412, "If-Match", `"1"`); prob["param"] != "version" {
		t.Errorf("PUT If-Match 1 with body version 0: %v", prob)
	}
	if prob := put(full(p), 412, "If-Match", `W/"1"`); prob["param"] != "If-Match" {
		t.Errorf("PUT with a weak tag: %v", prob)
	}
	put(full(p), 400, "If-Match", "*")
	// An explicit invalid value is refused, not replaced by a default.
	zero := p
	zero.SoftThreshold = 0
	if prob := put(full(zero), 400); prob["param"] != "soft_threshold" {
		t.Errorf("PUT soft_threshold 0: %v", prob)
	}

	// PATCH changes what it names and keeps the rest.
	got, _ := patch(`{"soft_expiry_days":7}`, 200, "If-Match", `"1"`)
	if got.Version != 2 || got.SoftExpiryDays != 7 || got.SoftThreshold != 2 || len(got.Reasons) != 2 {
		t.Errorf("PATCH soft_expiry_days = %+v, want version 2, expiry 7, threshold and reasons kept", got)
	}
	got, _ = patch(`{"reasons":{"mailbox_full":null,"spam_blocked":{"threshold":4}},"version":2}`, 200)
	if _, full := got.Reasons[parse.ReasonMailboxFull]; full || got.Reasons[parse.ReasonSpamBlocked].Threshold == nil ||
		*got.Reasons[parse.ReasonSpamBlocked].Threshold != 4 || got.Reasons[parse.ReasonMailboxDisabled].Threshold == nil {
		t.Errorf("PATCH reasons = %+v, want mailbox_full gone, spam_blocked 4, mailbox_disabled kept", got.Reasons)
	}
	got, _ = patch(`{"reasons":{"mailbox_disabled":{"threshold":null}}}`, 200, "If-Match", `"3"`)
	if _, ok := got.Reasons[parse.ReasonMailboxDisabled]; ok || got.Version != 4 {
		t.Errorf("PATCH a rule's only field to null = %+v, want the rule gone", got)
	}
	for _, tt := range []struct {
		name, body string
		status     int
		param      string
		headers    []string
	}{
		{"no precondition", `{"soft_threshold":5}`, 428, "If-Match", nil},
		{"stale If-Match", `{"soft_threshold":5}`, 412, "If-Match", []string{"If-Match", `"1"`}},
		{"stale version", `{"soft_threshold":5,"version":0}`, 412, "version", nil},
		{"a required field removed", `{"soft_threshold":null}`, 422, "soft_threshold", []string{"If-Match", `"4"`}},
		{"invalid value", `{"soft_threshold":0}`, 400, "soft_threshold", []string{"If-Match", `"4"`}},
		{"unknown field", `{"bogus":1}`, 400, "body", []string{"If-Match", `"4"`}},
		{"not an object", `[1]`, 400, "body", []string{"If-Match", `"4"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, prob := patch(tt.body, tt.status, tt.headers...)
			if prob["param"] != tt.param {
				t.Errorf("PATCH %s: problem %v, want param %s", tt.body, prob, tt.param)
			}
		})
	}
	problemOf(t, h.do("PATCH", "/v1/policy", "application/json", []byte(`{"soft_threshold":5}`), false), 415)
	if final, etag := get(); final.Version != 4 || etag != `"4"` || final.SoftThreshold != 2 || final.SoftExpiryDays != 7 {
		t.Errorf("after the refused edits: ETag %q %+v, want version 4 unchanged", etag, final)
	}
}
