package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/store"
)

// TestSMTPSeveralVERPRecipients: over a real SMTP session (swaks), a
// bounce carried to two VERP addresses in one transaction records both
// recipients (only the first was read), and the same bytes sent to two
// VERP addresses in two transactions are two messages (the second was
// taken for a duplicate and lost), while the same bytes sent again to the
// same address record nothing twice.
func TestSMTPSeveralVERPRecipients(t *testing.T) {
	t.Parallel()
	mail, db, url := newMail(t)
	rr := startReceiver(t, ingest.SMTPConfig{VERP: verp}, mail)
	ctx := context.Background()
	dir := t.TempDir()
	anonymous := func(name string) string {
		path := filepath.Join(dir, name+".eml")
		body := "From: postmaster@mx.example.org\r\nSubject: returned mail (" + name + ")\r\n\r\n" +
			"Your message could not be delivered: 550 5.1.1 mailbox unavailable.\r\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	send := func(path string, to ...string) {
		t.Helper()
		if out, ok := swaks(t, "--server", "127.0.0.1", "--port", rr.port(), "--from", "<>", "--to", strings.Join(to, ","), "--data", "@"+path); !ok {
			t.Fatalf("not accepted:\n%s", out)
		}
	}
	events := func(addr string) []store.Event {
		t.Helper()
		evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: addr, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}

	// One transaction, two VERP addresses (and one that is not VERP).
	send(anonymous("both"), "bounces+ann=example.com+t1@bounce.example.net", "postmaster@bounce.example.net",
		"bounces+bob=example.org+t2@bounce.example.net")
	for _, addr := range []string{"ann@example.com", "bob@example.org"} {
		if evs := events(addr); len(evs) != 1 || evs[0].Source != "smtp" {
			t.Errorf("events of %s = %+v, want one", addr, evs)
		}
	}
	ann := events("ann@example.com")
	if len(ann) == 1 {
		if ann[0].RawID == nil {
			t.Fatal("event without its raw message")
		}
		m, err := db.GetMessage(ctx, *ann[0].RawID)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			Envelope struct {
				VERPRecipients []string `json:"verp_recipients"`
			}
		}
		if err := json.Unmarshal(m.Result, &res); err != nil || !slices.Equal(res.Envelope.VERPRecipients, []string{"ann@example.com", "bob@example.org"}) {
			t.Errorf("stored result %s, want both VERP recipients", m.Result)
		}
		body, _, err := db.GetMessageBody(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := "Envelope-To: bounces+ann=example.com+t1@bounce.example.net,\r\n bounces+bob=example.org+t2@bounce.example.net\r\n"
		if !bytes.HasPrefix(body, []byte(want)) {
			t.Errorf("stored bytes start %q, want %q", body[:min(len(body), 120)], want)
		}
	}

	// The same bytes to two VERP addresses, in two transactions.
	same := anonymous("same")
	send(same, "bounces+cy=example.com@bounce.example.net")
	send(same, "bounces+di=example.com@bounce.example.net")
	// And again to the first: nothing recorded twice.
	send(same, "bounces+cy=example.com@bounce.example.net")
	for _, addr := range []string{"cy@example.com", "di@example.com"} {
		if evs := events(addr); len(evs) != 1 {
			t.Errorf("events of %s = %d, want 1", addr, len(evs))
		}
	}
	if n := countRows(t, pgConn(t, url), `SELECT count(*) FROM raw_messages`); n != 3 {
		t.Errorf("%d messages stored, want 3 (one per transaction but the repeated one)", n)
	}
	if got := rr.counted(ingest.OutcomeDuplicate); got != 1 {
		t.Errorf("duplicates counted %d, want 1", got)
	}

	// Mail to no VERP address is stored as it came: the same bytes twice
	// are one message.
	plain := anonymous("plain")
	send(plain, "postmaster@bounce.example.net")
	send(plain, "abuse@bounce.example.net")
	var stored []string
	rows, err := pgConn(t, url).Query(ctx, `SELECT encode(sha256, 'hex') FROM raw_messages`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		stored = append(stored, s)
	}
	if len(stored) != 4 || len(slices.Compact(slices.Sorted(slices.Values(stored)))) != 4 {
		t.Errorf("stored %d messages %v, want 4 distinct", len(stored), stored)
	}
}
