package api_test

import (
	"os"
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/store"
)

// TestUndeclaredLatin1OverHTTP: a delivery-status part written in
// undeclared Latin-1 (Windows-1252) is stored readable, not as U+FFFD.
func TestUndeclaredLatin1OverHTTP(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	raw, err := os.ReadFile("../parse/testdata/quirks/latin1-delivery-status.eml")
	if err != nil {
		t.Fatal(err)
	}
	if r := h.do("POST", "/v1/messages", "message/rfc822", raw, true); r.status != 201 {
		t.Fatalf("POST = %d %s", r.status, r.body)
	}
	var page struct{ Items []store.Event }
	h.get("/v1/events?recipient=h.mueller@example.de&type=bounce").json(t, &page)
	if len(page.Items) != 1 {
		t.Fatalf("events = %+v, want one bounce", page.Items)
	}
	if d := page.Items[0].Diagnostic; !strings.Contains(d, "Empfänger unbekannt – Postfach") || strings.ContainsRune(d, '\uFFFD') {
		t.Errorf("diagnostic %q, want the Latin-1 words decoded", d)
	}
}
