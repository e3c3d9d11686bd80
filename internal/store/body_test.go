package store_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// reportResult is a parse result as long as a real report's, repeating
// its addresses and diagnostics.
func reportResult(addr string) map[string]any {
	return map[string]any{"kind": "bounce", "engine": "RFC3464", "reporting_mta": "mx.example.net",
		"recipients": []map[string]any{{"address": addr, "original_recipient": addr, "action": "failed",
			"status": "5.1.1", "class": "hard", "reason": "user_unknown", "remote_mta": "mx.remote.example",
			"diagnostic": "550 5.1.1 <" + addr + ">: Recipient address rejected: User unknown"}}}
}

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// TestRawBodyRoundTrip records inputs of each stored form and reads their
// bytes and parse results back as they were given.
func TestRawBodyRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, url := dbtest.OpenURL(t, store.Options{})
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	report := func(addr string) []byte {
		return dsntest.DSN("round-trip-"+addr, dsntest.Rcpt{Address: addr, Status: "5.1.1",
			Diagnostic: "smtp; 550 5.1.1 <" + addr + ">: Recipient address rejected: User unknown"})
	}
	cases := []struct {
		name   string
		raw    []byte
		result any
		// deflated and resultDeflated are the stored forms expected.
		deflated, resultDeflated bool
	}{
		{"short body and result: both as they are", []byte("short"), map[string]string{"k": "v"}, false, false},
		{"report: body and result compressed", report("rt1@example.com"), reportResult("rt1@example.com"), true, true},
		{"report without a result", report("rt2@example.com"), nil, true, false},
		{"report with a tiny result: the result as it is", report("rt3@example.com"), map[string]string{}, true, false},
		{"random bytes: body and result as they are", randomBody(4096), reportResult("rt4@example.com"), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { // one after another: they share conn
			in := store.Input{Source: "http", ContentType: "message/rfc822", Raw: tc.raw, Status: store.ParseParsed,
				Kind: "bounce", Result: tc.result}
			out, err := db.Record(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			var deflated, dict, resultDeflated bool
			if err := conn.QueryRow(ctx, `SELECT deflated_size IS NOT NULL, deflate_dict IS NOT NULL, result_deflated IS NOT NULL
				FROM raw_messages WHERE id = $1`, out.Message.ID).Scan(&deflated, &dict, &resultDeflated); err != nil {
				t.Fatal(err)
			}
			if deflated != tc.deflated || dict != tc.deflated || resultDeflated != tc.resultDeflated {
				t.Errorf("stored body deflated %v (dictionary %v), result deflated %v; want %v, %v", deflated, dict, resultDeflated,
					tc.deflated, tc.resultDeflated)
			}
			body, ct, err := db.GetMessageBody(ctx, out.Message.ID)
			if err != nil || !bytes.Equal(body, tc.raw) || ct != "message/rfc822" {
				t.Errorf("GetMessageBody() = %d bytes, %q, %v; want the %d bytes recorded", len(body), ct, err, len(tc.raw))
			}
			m, err := db.GetMessage(ctx, out.Message.ID)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(tc.result)
			if tc.result == nil {
				if m.Result != nil {
					t.Errorf("GetMessage().Result = %s, want none", m.Result)
				}
			} else if !sameJSON(t, m.Result, want) {
				t.Errorf("GetMessage().Result = %s, want %s", m.Result, want)
			}
			if m.Size != len(tc.raw) {
				t.Errorf("GetMessage().Size = %d, want %d", m.Size, len(tc.raw))
			}
			// The same bytes again give the stored message back, result
			// included.
			again, err := db.Record(ctx, in)
			if err != nil || again.Created || again.Message.ID != out.Message.ID {
				t.Fatalf("Record() again = %+v, %v; want the stored message", again, err)
			}
			if tc.result != nil && !sameJSON(t, again.Message.Result, want) {
				t.Errorf("Record() again: result %s, want %s", again.Message.Result, want)
			}
		})
	}
}

func randomBody(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// deflated is raw compressed as a binary before migration 00027 stored
// it: one closed stream.
func deflated(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil || w.Close() != nil {
		t.Fatal("deflate")
	}
	return b.Bytes()
}

// TestMigrations27To29 upgrades a database holding raw inputs, events and
// a recipient stored as before migrations 00027 to 00029: they read back
// as they were, new inputs are stored in the new forms, and migrating down
// refuses while rows are in a form the older schema cannot hold, and
// otherwise gives back the columns that were dropped.
func TestMigrations27To29(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, conn, p := emptySchema(t)
	const before = 17 // the last migration before these
	if _, err := p.UpTo(ctx, before); err != nil {
		t.Fatal(err)
	}
	old := dsntest.DSN("old-report", dsntest.Rcpt{Address: "Old@Example.com", Status: "5.1.1"})
	oldResult := `{"kind": "bounce", "recipients": [{"address": "Old@Example.com"}]}`
	at := time.Now().UTC().Truncate(time.Second)
	var plainID, deflatedID int64
	if err := conn.QueryRow(ctx, `INSERT INTO raw_messages (sha256, source, provider, content_type, body, parse_status, kind, result)
		VALUES ('\x01', 'http', '', 'message/rfc822', 'plain bytes', 'parsed', 'bounce', $1) RETURNING id`, oldResult).Scan(&plainID); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, `INSERT INTO raw_messages (sha256, source, provider, content_type, body, deflated_size, parse_status, kind, result)
		VALUES ('\x02', 'http', '', 'message/rfc822', $1, $2, 'parsed', 'bounce', $3) RETURNING id`,
		deflated(t, old), len(old), oldResult).Scan(&deflatedID); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO events (raw_id, address, address_key, domain, type, class, reason, source, occurred_at)
		VALUES ($1, 'Old@Example.com', 'old@example.com', 'example.com', 'bounce', 'hard', 'user_unknown', 'http', $2)`,
		deflatedID, at); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO recipients (tenant, address_key, address, domain, hard_count, last_event_type, last_event_at)
		VALUES ('', 'old@example.com', 'Old@Example.com', 'example.com', 1, 'bounce', $1)`, at); err != nil {
		t.Fatal(err)
	}

	db, err := store.Open(ctx, url, store.Options{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate(): %v", err)
	}
	for _, tc := range []struct {
		id   int64
		body []byte
	}{{plainID, []byte("plain bytes")}, {deflatedID, old}} {
		body, _, err := db.GetMessageBody(ctx, tc.id)
		if err != nil || !bytes.Equal(body, tc.body) {
			t.Errorf("GetMessageBody(%d) after the upgrade = %q, %v; want %q", tc.id, body, err, tc.body)
		}
		m, err := db.GetMessage(ctx, tc.id)
		if err != nil || !sameJSON(t, m.Result, []byte(oldResult)) {
			t.Errorf("GetMessage(%d).Result after the upgrade = %s, %v; want %s", tc.id, m.Result, err, oldResult)
		}
	}
	evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: "OLD@example.com"})
	if err != nil || len(evs) != 1 || evs[0].Domain != "example.com" || evs[0].Address != "Old@Example.com" {
		t.Errorf("ListEvents() of the pre-upgrade event = %+v, %v; want it, domain example.com", evs, err)
	}

	if r, err := db.GetTenantRecipient(ctx, "", "old@EXAMPLE.com"); err != nil || r.Domain != "example.com" || r.HardCount != 1 {
		t.Errorf("GetTenantRecipient() of the pre-upgrade recipient = %+v, %v; want domain example.com, 1 hard bounce", r, err)
	}

	addr := "new@example.org"
	raw := dsntest.DSN("new-report", dsntest.Rcpt{Address: addr, Status: "5.1.1"})
	out, err := db.Record(ctx, store.Input{Source: "http", ContentType: "message/rfc822", Raw: raw, Status: store.ParseParsed,
		Kind: "bounce", Result: reportResult(addr), Events: []parse.Event{bounce(addr, parse.ClassHard, parse.ReasonUserUnknown, "5.1.1", at)}})
	if err != nil || out.Recorded != 1 {
		t.Fatalf("Record() after the upgrade = %+v, %v", out, err)
	}
	m, err := db.GetMessage(ctx, out.Message.ID)
	if want, _ := json.Marshal(reportResult(addr)); err != nil || !sameJSON(t, m.Result, want) {
		t.Errorf("GetMessage().Result of a new report = %s, %v; want %s", m.Result, err, want)
	}
	if r, err := db.GetTenantRecipient(ctx, "", addr); err != nil || r.Domain != "example.org" {
		t.Errorf("GetTenantRecipient() of a new recipient = %+v, %v; want domain example.org", r, err)
	}
	if evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: addr}); err != nil || len(evs) != 1 || evs[0].ID != out.Message.EventIDs[0] {
		t.Errorf("ListEvents() of a new event = %+v, %v; want event %v", evs, err, out.Message.EventIDs)
	}

	// Down: refused while a result is compressed, done once none is.
	if _, err := p.DownTo(ctx, before); err == nil || !strings.Contains(err.Error(), "result_deflated") {
		t.Errorf("DownTo(%d) with a compressed result = %v, want a refusal naming result_deflated", before, err)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM raw_messages WHERE deflate_dict IS NOT NULL OR result_deflated IS NOT NULL`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, before); err != nil {
		t.Fatalf("DownTo(%d): %v", before, err)
	}
	var result string
	if err := conn.QueryRow(ctx, `SELECT result::text FROM raw_messages WHERE id = $1`, deflatedID).Scan(&result); err != nil || !sameJSON(t, []byte(result), []byte(oldResult)) {
		t.Errorf("result after migrating down = %s, %v; want %s", result, err, oldResult)
	}
	rows, err := conn.Query(ctx, `SELECT domain FROM recipients ORDER BY address_key`)
	if err != nil {
		t.Fatal(err)
	}
	domains, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || !slices.Equal(domains, []string{"example.org", "example.com"}) {
		t.Errorf("recipients' domains after migrating down = %q, %v; want example.org, example.com", domains, err)
	}
	var plan string
	if err := conn.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = 'events_address_time'`).Scan(&plan); err != nil ||
		!strings.Contains(plan, "(address_key, occurred_at DESC)") {
		t.Errorf("events_address_time after migrating down = %q, %v; want (address_key, occurred_at DESC)", plan, err)
	}
}
