package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// bigDSN is a report naming n recipients.
func bigDSN(id string, n int) []byte {
	rcpts := make([]dsntest.Rcpt, n)
	for i := range rcpts {
		rcpts[i] = dsntest.Rcpt{Address: fmt.Sprintf("r%d.%s@example.com", i, id), Status: "5.1.1"}
	}
	return dsntest.DSN(id, rcpts...)
}

// TestRecipientCap: a message naming more recipients than the cap records
// the first ones only and says so in one parse error.
func TestRecipientCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	mail, err := ingest.NewMail(db, ingest.MailOptions{Logger: dbtest.Logger(t), MaxRecipients: 5})
	if err != nil {
		t.Fatal(err)
	}
	out, err := mail.Ingest(ctx, "http", "", bigDSN("cap", 12))
	if err != nil {
		t.Fatal(err)
	}
	if out.Recorded != 5 || out.SuppressionsAdded != 5 {
		t.Errorf("a 12-recipient report with a cap of 5 = %d events, %d suppressions, want 5 and 5", out.Recorded, out.SuppressionsAdded)
	}
	if n, _ := db.CountSuppressions(ctx, store.SuppressionFilter{}); n != 5 {
		t.Errorf("%d suppressions, want 5", n)
	}
	m, err := db.GetMessage(ctx, out.Message.ID)
	if err != nil {
		t.Fatal(err)
	}
	if m.ParseStatus != store.ParseParsed || !strings.Contains(m.ParseError, "12 recipients") || !strings.Contains(m.ParseError, "7 were not") {
		t.Errorf("stored message status %q error %q, want parsed with an error naming 12 recipients and 7 dropped", m.ParseStatus, m.ParseError)
	}
	var res struct{ Recipients []json.RawMessage }
	if err := json.Unmarshal(m.Result, &res); err != nil || len(res.Recipients) != 5 {
		t.Errorf("stored result holds %d recipients (%v), want 5", len(res.Recipients), err)
	}
}

// TestRecipientCapDefault: the default cap is well under 1,000.
func TestRecipientCapDefault(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, store.Options{})
	mail, err := ingest.NewMail(db, ingest.MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := mail.Ingest(context.Background(), "http", "", bigDSN("def", 1000))
	if err != nil {
		t.Fatal(err)
	}
	if out.Recorded != ingest.MaxRecipientsDefault || ingest.MaxRecipientsDefault > 500 {
		t.Errorf("a 1000-recipient report recorded %d events with the default cap %d, want the cap, at most 500", out.Recorded, ingest.MaxRecipientsDefault)
	}
}

// poisonAddress is refused by the database: recording any event for it
// fails inside PostgreSQL, as a message the database cannot take would.
const poisonAddress = "poison@example.com"

func poisonDatabase(t *testing.T, url string) {
	t.Helper()
	conn := pgConn(t, url)
	for _, q := range []string{
		`CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'test: this event is refused'; END $$`,
		`CREATE TRIGGER refuse_poison BEFORE INSERT ON events FOR EACH ROW
			WHEN (NEW.address_key = '` + poisonAddress + `') EXECUTE FUNCTION refuse_poison()`,
	} {
		if _, err := conn.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

func quarantine(t *testing.T, next ingest.EnvelopeIngester, db *store.DB, maxAttempts int) *ingest.Quarantine {
	t.Helper()
	q, err := ingest.NewQuarantine(next, db, ingest.QuarantineOptions{MaxAttempts: maxAttempts, Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func suppressed(db *store.DB, addr string) bool {
	_, err := db.GetSuppression(context.Background(), addr, "")
	return err == nil
}

// assertQuarantined checks that the one poison message is listed, its
// bytes stored as a failed input, and nothing suppressed from it.
func assertQuarantined(t *testing.T, db *store.DB, mailbox string, minAttempts int) {
	t.Helper()
	items, _, err := db.ListQuarantinedMail(context.Background(), "", 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("quarantined = %+v, %v; want the poison message", items, err)
	}
	q := items[0]
	if q.Mailbox != mailbox || q.Attempts < minAttempts || !strings.Contains(q.LastError, "this event is refused") || q.RawID == nil {
		t.Errorf("quarantined entry = %+v, want mailbox %s, at least %d attempts, the database's refusal and a raw id", q, mailbox, minAttempts)
	}
	if q.RawID != nil {
		m, err := db.GetMessage(context.Background(), *q.RawID)
		if err != nil || m.ParseStatus != store.ParseFailed || len(m.EventIDs) != 0 || !strings.Contains(m.ParseError, "quarantined") {
			t.Errorf("quarantined raw input = %+v, %v; want parse status failed, no events", m, err)
		}
	}
	if suppressed(db, poisonAddress) {
		t.Error("the quarantined message suppressed its recipient")
	}
}

// TestMaildirMovesOnAndQuarantines: a message the database refuses does
// not hold up the messages after it, and after MaxAttempts tries it is
// set aside (stored, listed, counted) and leaves new/.
func TestMaildirMovesOnAndQuarantines(t *testing.T) {
	t.Parallel()
	mail, db, url := newMail(t)
	poisonDatabase(t, url)
	dir := t.TempDir()
	deliver(t, dir, []corpusMessage{
		{"poison", dsntest.DSN("p1", dsntest.Rcpt{Address: poisonAddress, Status: "5.1.1"})},
		{"good1", dsntest.DSN("g1", dsntest.Rcpt{Address: "good1@example.com", Status: "5.1.1"})},
		{"good2", dsntest.DSN("g2", dsntest.Rcpt{Address: "good2@example.com", Status: "5.1.1"})},
	})
	// Many attempts allowed: the good messages are recorded while the
	// poison one keeps failing in front of them.
	patient := quarantine(t, mail, db, 1_000_000)
	run := startMaildir(t, context.Background(), ingest.MaildirConfig{Name: "box", Path: dir}, patient)
	eventually(t, "the messages after the failing one", func() bool {
		return suppressed(db, "good1@example.com") && suppressed(db, "good2@example.com")
	})
	eventually(t, "a few failed tries", func() bool { return run.counted("box", ingest.OutcomeFailed) >= 2 })
	if n := len(files(t, filepath.Join(dir, "new"))); n != 1 {
		t.Errorf("%d files left in new/, want the failing one", n)
	}
	run.stop(t)
	// Now with 3 tries: it is quarantined and the Maildir is empty.
	strict := quarantine(t, mail, db, 3)
	run = startMaildir(t, context.Background(), ingest.MaildirConfig{Name: "box", Path: dir}, strict)
	eventually(t, "new/ to empty", func() bool { return len(files(t, filepath.Join(dir, "new"))) == 0 })
	run.stop(t)
	assertQuarantined(t, db, "box", 3)
	if n := run.counted("box", ingest.OutcomeQuarantined); n != 1 {
		t.Errorf("bounced_mailbox_messages_total{outcome=quarantined} = %v, want 1", n)
	}
}

// TestSMTPQuarantines: the receiver answers 451 to a message it cannot
// record, and once it has failed MaxAttempts times takes it (250) into
// quarantine, so the sending MTA stops retrying.
func TestSMTPQuarantines(t *testing.T) {
	t.Parallel()
	mail, db, url := newMail(t)
	poisonDatabase(t, url)
	q := quarantine(t, mail, db, 2)
	rr := startReceiver(t, ingest.SMTPConfig{}, q)
	path := filepath.Join(t.TempDir(), "m.eml")
	if err := os.WriteFile(path, dsntest.DSN("sp", dsntest.Rcpt{Address: poisonAddress, Status: "5.1.1"}), 0o600); err != nil {
		t.Fatal(err)
	}
	send := func() (string, bool) {
		return swaks(t, "--server", "127.0.0.1", "--port", rr.port(), "--from", "<>", "--to", "b@bounce.example.net", "--data", "@"+path)
	}
	for i := range 2 {
		if out, ok := send(); ok || !replied(out, "451 4.3.0") {
			t.Fatalf("try %d: want 451 4.3.0:\n%s", i+1, out)
		}
	}
	if out, ok := send(); !ok || !replied(out, "250") {
		t.Fatalf("try 3, after 2 failures: want 250 (quarantined):\n%s", out)
	}
	assertQuarantined(t, db, "smtp", 2)
	if n := rr.counted(ingest.OutcomeQuarantined); n != 1 {
		t.Errorf("bounced_mailbox_messages_total{outcome=quarantined} = %v, want 1", n)
	}
	// A good message is recorded as ever.
	if err := os.WriteFile(path, dsntest.DSN("sg", dsntest.Rcpt{Address: "fine@example.com", Status: "5.1.1"}), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, ok := send(); !ok || !suppressed(db, "fine@example.com") {
		t.Fatalf("a good message after the quarantine:\n%s", out)
	}
}

// TestIMAPMovesOnAndQuarantines: in an IMAP folder too, the messages after
// a failing one are recorded and moved, and the failing one is set aside
// after MaxAttempts tries.
func TestIMAPMovesOnAndQuarantines(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, false)
	poisonDatabase(t, e.url)
	e.dc.appendMail(t, "INBOX",
		dsntest.DSN("ip", dsntest.Rcpt{Address: poisonAddress, Status: "5.1.1"}),
		dsntest.DSN("ig1", dsntest.Rcpt{Address: "imap1@example.com", Status: "5.1.1"}),
		dsntest.DSN("ig2", dsntest.Rcpt{Address: "imap2@example.com", Status: "5.1.1"}))
	cfg := e.config("imapbox")
	cfg.Action = ingest.ActionMove
	patient := quarantine(t, e.mail, e.db, 1_000_000)
	r := e.start(t, cfg, ingest.MailboxDeps{Ingester: patient})
	eventually(t, "the messages after the failing one", func() bool {
		return suppressed(e.db, "imap1@example.com") && suppressed(e.db, "imap2@example.com")
	})
	eventually(t, "the recorded messages to move", func() bool { return e.dc.count(t, "INBOX") == 1 })
	r.stop(t)
	r = e.start(t, cfg, ingest.MailboxDeps{Ingester: quarantine(t, e.mail, e.db, 3)})
	eventually(t, "the folder to empty", func() bool { return e.dc.count(t, "INBOX") == 0 })
	r.stop(t)
	if n := e.dc.count(t, "Processed"); n != 3 {
		t.Errorf("%d messages in Processed, want 3", n)
	}
	assertQuarantined(t, e.db, "imapbox", 3)
	if n := metricValue(r.reg, "bounced_mailbox_messages_total", map[string]string{"mailbox": "imapbox", "outcome": ingest.OutcomeQuarantined}); n != 1 {
		t.Errorf("bounced_mailbox_messages_total{outcome=quarantined} = %v, want 1", n)
	}
}

// TestHugeDSNDoesNotBlockMaildir: a 10 MiB report naming about 150,000
// recipients, which anyone can mail to the bounce address, records the
// capped number of recipients, and the bounce after it is recorded too.
func TestHugeDSNDoesNotBlockMaildir(t *testing.T) {
	t.Parallel()
	_, db, _ := newMail(t)
	mail, err := ingest.NewMail(db, ingest.MailOptions{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@example.org\r\nSubject: Undelivered Mail\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nFailed.\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n")
	n := 0
	for b.Len() < 10<<20-200 {
		fmt.Fprintf(&b, "\r\nFinal-Recipient: rfc822;v%d@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n", n)
		n++
	}
	b.WriteString("\r\n--B--\r\n")
	if n < 100000 {
		t.Fatalf("the report names %d recipients, want over 100,000", n)
	}
	q := quarantine(t, mail, db, 5)
	dir := t.TempDir()
	deliver(t, dir, []corpusMessage{
		{"huge", []byte(b.String())},
		{"after", dsntest.DSN("after", dsntest.Rcpt{Address: "after@example.com", Status: "5.1.1"})},
	})
	run := startMaildir(t, context.Background(), ingest.MaildirConfig{Name: "big", Path: dir, MaxMessageBytes: 11 << 20}, q)
	eventually(t, "the bounce after the huge report", func() bool { return suppressed(db, "after@example.com") })
	run.stop(t)
	if got, _ := db.CountSuppressions(context.Background(), store.SuppressionFilter{}); got != ingest.MaxRecipientsDefault+1 {
		t.Errorf("%d suppressions from a report naming %d recipients and one bounce, want %d", got, n, ingest.MaxRecipientsDefault+1)
	}
}

// TestMailTrustSent: with trust "sent", a bounce suppresses only when it
// is about mail we reported sending, by its Message-ID or its VERP
// token; any other is recorded as unverified and suppresses nothing. The
// default trusts every bounce, as before.
func TestMailTrustSent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	reg := prometheus.NewRegistry()
	mail, err := ingest.NewMail(db, ingest.MailOptions{Logger: dbtest.Logger(t), Registerer: reg, Trust: ingest.TrustSent, Sent: db})
	if err != nil {
		t.Fatal(err)
	}
	// dsntest reports the returned message as <orig-ID@example.org>.
	if err := db.RecordSentMessages(ctx, "", []store.SentMessage{
		{MessageID: "<orig-known@example.org>"},
		{MessageID: "tok42", Recipient: "verp.user@example.com"},
	}); err != nil {
		t.Fatal(err)
	}
	ingestOne := func(env ingest.Envelope, id, addr string) store.Outcome {
		t.Helper()
		out, err := mail.IngestEnvelope(ctx, env, dsntest.DSN(id, dsntest.Rcpt{Address: addr, Status: "5.1.1"}))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	http := ingest.Envelope{Source: "http"}
	ingestOne(http, "known", "known@example.com")
	ingestOne(http, "forged", "victim@example.com")
	verp := parse.VERP{Prefix: "bounces", Separator: '+'}
	ingestOne(ingest.Envelope{Source: "smtp", Provider: "smtp", VERP: verp,
		RcptTo: []string{"bounces+verp.user=example.com+tok42@bounce.example.net"}}, "v1", "verp.user@example.com")
	// The token was reported for another recipient.
	ingestOne(ingest.Envelope{Source: "smtp", Provider: "smtp", VERP: verp,
		RcptTo: []string{"bounces+other=example.com+tok42@bounce.example.net"}}, "v2", "other@example.com")
	for addr, want := range map[string]bool{"known@example.com": true, "verp.user@example.com": true, "victim@example.com": false, "other@example.com": false} {
		if got := suppressed(db, addr); got != want {
			t.Errorf("%s suppressed = %v, want %v", addr, got, want)
		}
	}
	evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: "victim@example.com"})
	if err != nil || len(evs) != 1 || !evs[0].Unverified || evs[0].Type != parse.EventBounce {
		t.Errorf("events of the unverified bounce = %+v, %v; want one bounce marked unverified", evs, err)
	}
	if n := metricValue(reg, "bounced_ingest_unverified_total", map[string]string{"source": "http"}); n != 1 {
		t.Errorf("bounced_ingest_unverified_total{source=http} = %v, want 1", n)
	}
	rows, err := db.Stats(ctx, store.StatsQuery{Since: evs[0].OccurredAt.Add(-40 * 24 * time.Hour), Until: evs[0].OccurredAt.Add(40 * 24 * time.Hour), Bucket: store.BucketDay})
	var unverified int64
	for _, r := range rows {
		unverified += r.Unverified
	}
	if err != nil || unverified != 2 {
		t.Errorf("stats count %d unverified events (%v), want 2", unverified, err)
	}
	// The default trusts any bounce, as before.
	open, err := ingest.NewMail(db, ingest.MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Ingest(ctx, "http", "", dsntest.DSN("any", dsntest.Rcpt{Address: "anyone@example.com", Status: "5.1.1"})); err != nil {
		t.Fatal(err)
	}
	if !suppressed(db, "anyone@example.com") {
		t.Error("with the default trust a bounce did not suppress")
	}
	if _, err := ingest.NewMail(db, ingest.MailOptions{Trust: ingest.TrustSent}); err == nil {
		t.Error("trust sent without a sent-message store was accepted")
	}
}

// TestKelvinSignBounceSparesKate: a bounce for "\u212Aate" (Kelvin sign)
// suppresses that address, not kate.
func TestKelvinSignBounceSparesKate(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, store.Options{})
	mail, err := ingest.NewMail(db, ingest.MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mail.Ingest(context.Background(), "http", "", dsntest.DSN("kelvin", dsntest.Rcpt{Address: "\u212Aate@example.com", Status: "5.1.1"})); err != nil {
		t.Fatal(err)
	}
	if suppressed(db, "kate@example.com") || suppressed(db, "Kate@example.com") {
		t.Error("a bounce for \\u212Aate@example.com suppressed kate@example.com")
	}
	if !suppressed(db, "\u212Aate@example.com") {
		t.Error("a bounce for \\u212Aate@example.com did not suppress it")
	}
}
