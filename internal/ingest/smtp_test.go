package ingest_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// swaks runs the real swaks SMTP client and returns its transcript and
// whether it reported success.
func swaks(t testing.TB, args ...string) (string, bool) {
	t.Helper()
	bin, err := exec.LookPath("swaks")
	if err != nil {
		t.Fatalf("swaks is not installed (Debian: apt-get install swaks libnet-ssleay-perl): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"--helo", "mx.example.org", "--timeout", "30"}, args...)...).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
	return string(out), err == nil
}

// swaksTLS fails the test unless swaks can speak TLS: it needs Perl's
// Net::SSLeay, a package of its own on Debian.
func swaksTLS(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("swaks")
	if err != nil {
		t.Fatalf("swaks is not installed (Debian: apt-get install swaks libnet-ssleay-perl): %v", err)
	}
	out, _ := exec.Command(bin, "--support").CombinedOutput()
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, " TLS ") && !strings.HasPrefix(line, "=== TLS supported") {
			t.Fatalf("swaks cannot use TLS (Debian: apt-get install libnet-ssleay-perl): %s", strings.TrimSpace(line))
		}
	}
}

// replied reports whether the server answered reply ("250 2.0.0") in a
// swaks transcript, in clear or over TLS.
func replied(out, reply string) bool {
	for _, prefix := range []string{"<-  ", "<~  ", "<** ", "<~* "} {
		if strings.Contains(out, prefix+reply) {
			return true
		}
	}
	return false
}

type receiverRun struct {
	r    *ingest.Receiver
	addr net.Addr
	reg  *prometheus.Registry
}

func startReceiver(t *testing.T, cfg ingest.SMTPConfig, ing ingest.EnvelopeIngester) *receiverRun {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if len(cfg.Domains) == 0 && len(cfg.Addresses) == 0 {
		cfg.Domains = []string{"bounce.example.net"}
	}
	cfg.Hostname = "bounced.test"
	r, err := ingest.NewReceiver(cfg, ingest.SMTPDeps{Ingester: ing, Logger: dbtest.Logger(t), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := r.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Receiver.Run = %v", err)
		}
	})
	return &receiverRun{r: r, addr: addr, reg: reg}
}

func (rr *receiverRun) port() string {
	_, port, _ := net.SplitHostPort(rr.addr.String())
	return port
}

func (rr *receiverRun) counted(outcome string) int {
	return int(metricValue(rr.reg, "bounced_mailbox_messages_total", map[string]string{"outcome": outcome}))
}

var verp = parse.VERP{Prefix: "bounces", Separator: '+'}

func TestSMTPReceivesCorpusWithSwaks(t *testing.T) {
	t.Parallel()
	mail, db, url := newMail(t)
	rr := startReceiver(t, ingest.SMTPConfig{VERP: verp}, mail)
	msgs := corpus(t, 25)
	dir := t.TempDir()
	for i, m := range msgs {
		path := filepath.Join(dir, m.name)
		if err := os.WriteFile(path, m.raw, 0o600); err != nil {
			t.Fatal(err)
		}
		to := fmt.Sprintf("bounces+user%d=example.com@bounce.example.net", i)
		out, ok := swaks(t, "--server", "127.0.0.1", "--port", rr.port(), "--from", "<>", "--to", to, "--data", "@"+path)
		if !ok || !replied(out, "250 2.0.0") {
			t.Fatalf("swaks %s: not accepted:\n%s", m.name, out)
		}
	}
	conn := pgConn(t, url)
	// 250 came after commit: every message is there the moment swaks is done.
	stored := storedBodies(t, conn, db)
	if len(stored) != len(expectEvents(msgs)) {
		t.Fatalf("%d messages stored, want %d", len(stored), len(expectEvents(msgs)))
	}
	assertExactlyOnce(t, conn, expectEventsVERP(stored))
	// The result is read through the store: a report's is kept
	// compressed after its body.
	n := 0
	for _, m := range stored {
		id, err := strconv.ParseInt(m.name, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := db.GetMessage(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		var result struct {
			Envelope struct {
				VERPRecipient string `json:"verp_recipient"`
			} `json:"envelope"`
		}
		if json.Unmarshal(msg.Result, &result) == nil && msg.Source == "smtp" &&
			strings.HasPrefix(result.Envelope.VERPRecipient, "user") && strings.HasSuffix(result.Envelope.VERPRecipient, "@example.com") {
			n++
		}
	}
	if n != len(stored) {
		t.Errorf("%d of %d messages carry their VERP recipient in the envelope", n, len(stored))
	}
	if got := rr.counted(ingest.OutcomeStored) + rr.counted(ingest.OutcomeDuplicate); got != len(msgs) {
		t.Errorf("messages counted = %d, want %d", got, len(msgs))
	}
}

// storedBodies returns the raw bytes of every stored message (a body
// kept compressed is inflated, as GET /v1/messages/{id}/raw does).
func storedBodies(t testing.TB, conn *pgx.Conn, db *store.DB) []corpusMessage {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT id FROM raw_messages ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	var out []corpusMessage
	for _, id := range ids {
		// The store gives back the bytes as received, however it keeps
		// them (compressed, with a dictionary).
		body, _, err := db.GetMessageBody(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, corpusMessage{fmt.Sprint(id), body})
	}
	return out
}

// expectEventsVERP is expectEvents for mail that came with a VERP
// recipient: a report naming no recipient gets the VERP one.
func expectEventsVERP(msgs []corpusMessage) map[[32]byte]int {
	want := map[[32]byte]int{}
	for _, m := range msgs {
		rep, err := parse.Parse(m.raw)
		named := false
		for _, r := range rep.Recipients {
			if _, aerr := parse.NormalizeAddress(r.Address); aerr == nil {
				named = true
			}
		}
		n := 1
		switch {
		case errors.Is(err, parse.ErrEmpty) || errors.Is(err, parse.ErrTooLarge):
			n = 0
		case named && err != nil:
			n = 0 // a partial report: stored, not recorded
		case named:
			n = len(parse.Events(rep, time.Now()))
		}
		want[sha256.Sum256(m.raw)] = n
	}
	return want
}

func TestSMTPRefusesOtherDomains(t *testing.T) {
	t.Parallel()
	mail, _, url := newMail(t)
	rr := startReceiver(t, ingest.SMTPConfig{Domains: []string{"bounce.example.net"}, Addresses: []string{"dsn@example.org"}}, mail)
	raw := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(raw, dsntest.DSN("relay", dsntest.Rcpt{Address: "x@example.com", Status: "5.1.1"}), 0o600)
	cases := []struct {
		name, to string
		accept   bool
	}{
		{"accepted domain", "anything@bounce.example.net", true},
		{"accepted domain, any case", "Bounces@BOUNCE.Example.NET", true},
		{"accepted address", "dsn@example.org", true},
		{"another address at that domain", "postmaster@example.org", false},
		{"open relay attempt", "victim@gmail.com", false},
		{"subdomain of an accepted domain", "x@evil.bounce.example.net", false},
		{"accepted domain as a suffix", "x@notbounce.example.net", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, ok := swaks(t, "--server", "127.0.0.1", "--port", rr.port(), "--from", "<>", "--to", tc.to, "--data", "@"+raw)
			if tc.accept {
				if !ok || !replied(out, "250 2.0.0") {
					t.Errorf("RCPT %s refused:\n%s", tc.to, out)
				}
				return
			}
			if ok || !replied(out, "550 5.1.1") {
				t.Errorf("RCPT %s: want 550 5.1.1 and failure:\n%s", tc.to, out)
			}
		})
	}
	// Only the accepted transactions stored a message (all the same bytes).
	if n := countRows(t, pgConn(t, url), `SELECT count(*) FROM raw_messages`); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

func TestSMTPDatabaseDownAnswers451(t *testing.T) {
	t.Parallel()
	down, err := store.Open(context.Background(), fmt.Sprintf("postgres://bounced@127.0.0.1:%d/x?connect_timeout=2", freePort(t)), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	downMail, _ := ingest.NewMail(down, ingest.MailOptions{})
	rr := startReceiver(t, ingest.SMTPConfig{UnhealthyAfter: time.Millisecond}, downMail)
	raw := filepath.Join(t.TempDir(), "m.eml")
	os.WriteFile(raw, dsntest.DSN("down", dsntest.Rcpt{Address: "x@example.com", Status: "5.1.1"}), 0o600)
	out, ok := swaks(t, "--server", "127.0.0.1", "--port", rr.port(), "--from", "<>", "--to", "b@bounce.example.net", "--data", "@"+raw)
	if ok || !replied(out, "451 4.3.0") {
		t.Fatalf("with the database down: want 451 4.3.0 and failure:\n%s", out)
	}
	if rr.counted(ingest.OutcomeFailed) != 1 {
		t.Errorf("failed = %d, want 1", rr.counted(ingest.OutcomeFailed))
	}
	eventually(t, "the receiver to report failure", func() bool {
		return errors.Is(rr.r.CheckHealth(context.Background()), ingest.ErrMailboxFailing)
	})
}

func TestSMTPVERPRecoversRecipientOfUnparseableBounce(t *testing.T) {
	t.Parallel()
	mail, db, url := newMail(t)
	rr := startReceiver(t, ingest.SMTPConfig{VERP: verp}, mail)
	path := filepath.Join(t.TempDir(), "m.eml")
	// No DSN structure, no status code: nothing to parse but the VERP address.
	os.WriteFile(path, []byte("From: postmaster@mx.example.org\r\nSubject: returned mail\r\n\r\nYour message could not be delivered.\r\n"), 0o600)
	out, ok := swaks(t, "--server", "127.0.0.1", "--port", rr.port(), "--from", "<>", "--to", "bounces+Gone.User=Example.com+c42@bounce.example.net", "--data", "@"+path)
	if !ok {
		t.Fatalf("not accepted:\n%s", out)
	}
	evs, _, err := db.ListEvents(context.Background(), store.EventFilter{Address: "gone.user@example.com", Limit: 10})
	if err != nil || len(evs) != 1 {
		t.Fatalf("events for the VERP recipient = %v, %v; want 1", evs, err)
	}
	if ev := evs[0]; ev.Type != parse.EventBounce || ev.Class != parse.ClassSoft || ev.Source != "smtp" {
		t.Errorf("event = %+v; want a soft bounce from smtp (no evidence to suppress on)", ev)
	}
	var env struct {
		Envelope struct {
			MailFrom          string   `json:"mail_from"`
			RcptTo            []string `json:"rcpt_to"`
			VERPRecipient     string   `json:"verp_recipient"`
			VERPToken         string   `json:"verp_token"`
			RecipientFromVERP bool     `json:"recipient_from_verp"`
		} `json:"envelope"`
	}
	var result []byte
	if err := pgConn(t, url).QueryRow(context.Background(), `SELECT result FROM raw_messages`).Scan(&result); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(result, &env); err != nil {
		t.Fatal(err)
	}
	if e := env.Envelope; e.VERPRecipient != "Gone.User@example.com" || e.VERPToken != "c42" || !e.RecipientFromVERP || len(e.RcptTo) != 1 || e.MailFrom != "" {
		t.Errorf("stored envelope = %+v", e)
	}
}

func TestSMTPLimits(t *testing.T) {
	t.Parallel()
	mail, _, _ := newMail(t)
	rr := startReceiver(t, ingest.SMTPConfig{MaxRecipients: 2, MaxMessageBytes: 2048, MaxConnections: 2, ReadTimeout: 500 * time.Millisecond}, mail)
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small.eml"), filepath.Join(dir, "big.eml")
	os.WriteFile(small, dsntest.DSN("small", dsntest.Rcpt{Address: "x@example.com", Status: "5.1.1"}), 0o600)
	os.WriteFile(big, append(dsntest.DSN("big", dsntest.Rcpt{Address: "y@example.com", Status: "5.1.1"}), []byte(strings.Repeat("padding line\r\n", 300))...), 0o600)

	t.Run("recipients", func(t *testing.T) {
		out, _ := swaks(t, "--server", "127.0.0.1", "--port", rr.port(), "--from", "<>", "--to", "a@bounce.example.net,b@bounce.example.net,c@bounce.example.net", "--data", "@"+small)
		if !replied(out, "452 4.5.3") {
			t.Errorf("third recipient: want 452 4.5.3:\n%s", out)
		}
	})
	t.Run("size", func(t *testing.T) {
		out, ok := swaks(t, "--server", "127.0.0.1", "--port", rr.port(), "--from", "<>", "--to", "a@bounce.example.net", "--data", "@"+big)
		if ok || !replied(out, "552 5.3.4") {
			t.Errorf("oversized message: want 552 5.3.4:\n%s", out)
		}
		if rr.counted(ingest.OutcomeTooLarge) != 1 {
			t.Errorf("too_large = %d, want 1", rr.counted(ingest.OutcomeTooLarge))
		}
	})
	t.Run("connections and idle timeout", func(t *testing.T) {
		var held []*bufio.Reader
		for len(held) < 2 {
			// The earlier subtests' connections may still be closing:
			// until their slots are free, the receiver answers 421.
			var br *bufio.Reader
			eventually(t, "a connection slot", func() bool {
				c, err := net.Dial("tcp", rr.addr.String())
				if err != nil {
					t.Fatal(err)
				}
				br = bufio.NewReader(c)
				line, _ := br.ReadString('\n')
				if strings.HasPrefix(line, "421 4.7.0") {
					c.Close()
					return false
				}
				if !strings.HasPrefix(line, "220 ") {
					t.Fatalf("greeting = %q", line)
				}
				t.Cleanup(func() { c.Close() })
				return true
			})
			held = append(held, br)
		}
		c, err := net.Dial("tcp", rr.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if line, _ := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(line, "421 4.7.0") {
			t.Errorf("third connection greeted %q, want 421 4.7.0", line)
		}
		// The silent connections are closed after the read timeout.
		for _, br := range held {
			if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "421 4.4.2") {
				t.Errorf("idle connection got %q, want 421 4.4.2", line)
			}
		}
		// Their slots are free again.
		eventually(t, "a free slot", func() bool {
			out, ok := swaks(t, "--server", "127.0.0.1", "--port", rr.port(), "--from", "<>", "--to", "a@bounce.example.net", "--data", "@"+small)
			return ok && replied(out, "250 2.0.0")
		})
	})
}

func TestSMTPStartTLS(t *testing.T) {
	t.Parallel()
	mail, _, _ := newMail(t)
	dir := t.TempDir()
	certFile, keyFile, _ := testCert(t, dir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	swaksTLS(t)
	withTLS := startReceiver(t, ingest.SMTPConfig{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}, mail)
	without := startReceiver(t, ingest.SMTPConfig{}, mail)
	raw := filepath.Join(dir, "m.eml")
	os.WriteFile(raw, dsntest.DSN("tls", dsntest.Rcpt{Address: "x@example.com", Status: "5.1.1"}), 0o600)
	out, ok := swaks(t, "--server", "127.0.0.1", "--port", withTLS.port(), "--from", "<>", "--to", "a@bounce.example.net", "--data", "@"+raw, "--tls")
	if !ok || !strings.Contains(out, "TLS started") || !replied(out, "250 2.0.0") {
		t.Errorf("STARTTLS delivery failed:\n%s", out)
	}
	out, ok = swaks(t, "--server", "127.0.0.1", "--port", without.port(), "--from", "<>", "--to", "a@bounce.example.net", "--data", "@"+raw, "--tls")
	if ok || strings.Contains(out, "250-STARTTLS") {
		t.Errorf("STARTTLS offered without a certificate:\n%s", out)
	}
}

func TestLMTPOnUnixSocket(t *testing.T) {
	t.Parallel()
	mail, _, url := newMail(t)
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	rr := startReceiver(t, ingest.SMTPConfig{LMTP: true, Network: "unix", Addr: sock, VERP: verp}, mail)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket %v, %v; want a 0660 unix socket", fi, err)
	}
	msgs := corpus(t, 60)
	dir := t.TempDir()
	for i, m := range msgs {
		path := filepath.Join(dir, m.name)
		os.WriteFile(path, m.raw, 0o600)
		out, ok := swaks(t, "--socket", sock, "--protocol", "LMTP", "--from", "<>", "--to", fmt.Sprintf("bounces+l%d=example.com@bounce.example.net", i), "--data", "@"+path)
		if !ok || !replied(out, "250 2.0.0") {
			t.Fatalf("LMTP delivery of %s failed:\n%s", m.name, out)
		}
	}
	if n := countRows(t, pgConn(t, url), `SELECT count(*) FROM raw_messages WHERE source = 'lmtp'`); n != len(expectEvents(msgs)) {
		t.Errorf("%d messages stored over LMTP, want %d", n, len(expectEvents(msgs)))
	}
	if rr.r.State() != ingest.StateListening {
		t.Errorf("state = %s, want listening", rr.r.State())
	}
}

func TestReceiverConfigValidation(t *testing.T) {
	t.Parallel()
	mail := &ingest.Mail{}
	cases := []struct {
		name string
		cfg  ingest.SMTPConfig
		want string
	}{
		{"no domains: would accept nothing", ingest.SMTPConfig{Addr: ":2525"}, "no accepted domains"},
		{"no address", ingest.SMTPConfig{Domains: []string{"b.example"}}, "no listen address"},
		{"bad domain", ingest.SMTPConfig{Addr: ":2525", Domains: []string{"x@y"}}, "not a domain"},
		{"bad address", ingest.SMTPConfig{Addr: ":2525", Addresses: []string{"nope"}}, "accepted address"},
		{"bad network", ingest.SMTPConfig{Addr: ":2525", Domains: []string{"b.example"}, Network: "udp"}, "network"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ingest.NewReceiver(tc.cfg, ingest.SMTPDeps{Ingester: mail}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewReceiver(%+v) = %v, want %q", tc.cfg, err, tc.want)
			}
		})
	}
}
