package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// withPassword adds a password to a database URL; the test server trusts
// local connections, so it connects all the same.
func withPassword(t *testing.T, raw, password string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		t.Fatalf("database URL %q is not a URL: %v", raw, err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

func TestCheckConfigCommand(t *testing.T) {
	t.Parallel()
	kit := kitFor(t)
	dbPassword, admin, imapPassword := "db-password-never-shown", "admin-key-never-shown-0123456789", "imap-password-never-shown"
	goodURL := withPassword(t, dbtest.URL(t), dbPassword)
	maildir := maildirWith(t, dsntest.DSN("cc", dsntest.Rcpt{Address: "a@example.com", Status: "5.1.1"}))
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	closedPort := freePort(t)

	good := func() map[string]string {
		m := map[string]string{
			"BOUNCED_DATABASE_URL": goodURL,
			"BOUNCED_LISTEN":       freePort(t),
			"BOUNCED_ADMIN_KEY":    admin,
			"BOUNCED_MAILDIR":      maildir,
			"BOUNCED_SMTP_LISTEN":  freePort(t),
			"BOUNCED_LMTP_SOCKET":  filepath.Join(t.TempDir(), "lmtp.sock"),
			"BOUNCED_SMTP_DOMAINS": "bounce.example.net",
			"BOUNCED_VERP_PREFIX":  "bounces",
		}
		for k, v := range kit.Env() {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		edit  func(map[string]string)
		fails []string // FAIL lines expected; none: the check passes
		shows []string
	}{
		{name: "everything reachable", edit: func(map[string]string) {},
			shows: []string{"ok    database: PostgreSQL", "(current)", "ok    events partitions", "ok    api keys: required",
				"ok    webhooks: keys read for brevo, generic, mailgun, mailjet, mandrill, postal, postmark, resend, sendgrid, ses, sparkpost", "messages waiting in new/", "1 messages waiting",
				"ok    smtp listen", "ok    lmtp socket", "admin key set", "prefix bounces", "no problems found"}},
		{name: "webhook credentials bound to a tenant", edit: func(m map[string]string) {
			m["BOUNCED_WEBHOOK_TENANTS"] = `{"acme": {"generic": {"secrets": ["a-secret-of-acme"]}}}`
		}, shows: []string{"credentials bound to tenants acme", "no problems found"}},
		{name: "a webhook credential bound twice", edit: func(m map[string]string) {
			m["BOUNCED_WEBHOOK_TENANTS"] = `{"acme": {"generic": {"secrets": ["s1"]}}, "globex": {"generic": {"secrets": ["s1"]}}}`
		}, fails: []string{"bind each credential once"}},
		{name: "invalid configuration", edit: func(m map[string]string) { m["BOUNCED_AUTH"] = "maybe" },
			fails: []string{`configuration: config: auth: "maybe" is not auto, on or off`}},
		{name: "database down", edit: func(m map[string]string) {
			m["BOUNCED_DATABASE_URL"] = "postgres://bounced:" + dbPassword + "@" + closedPort + "/bounced?connect_timeout=2"
		}, fails: []string{"database:"}},
		{name: "port in use", edit: func(m map[string]string) { m["BOUNCED_LISTEN"] = busy.Addr().String() },
			fails: []string{"http listen " + busy.Addr().String() + ": listen tcp " + busy.Addr().String() + ": bind: address already in use (by another program)"}},
		{name: "open beyond loopback", edit: func(m map[string]string) {
			_, port, _ := net.SplitHostPort(freePort(t))
			m["BOUNCED_LISTEN"] = "0.0.0.0:" + port
			delete(m, "BOUNCED_ADMIN_KEY")
		}, fails: []string{"api keys: refusing to listen beyond loopback with no API key"}},
		{name: "imap unreachable", edit: func(m map[string]string) {
			m["BOUNCED_IMAP_MAILBOXES"] = "bounces"
			m["BOUNCED_IMAP_BOUNCES_HOST"] = "127.0.0.1"
			_, port, _ := net.SplitHostPort(closedPort)
			m["BOUNCED_IMAP_BOUNCES_PORT"] = port
			m["BOUNCED_IMAP_BOUNCES_TLS"] = "plain"
			m["BOUNCED_IMAP_BOUNCES_USER"] = "bounce-reader"
			m["BOUNCED_IMAP_BOUNCES_PASSWORD"] = imapPassword
		}, fails: []string{"imap bounces: connect to " + closedPort},
			shows: []string{"bounce-reader@127.0.0.1:", "password set"}},
		{name: "bad webhook key", edit: func(m map[string]string) { m["BOUNCED_WEBHOOK_SENDGRID_PUBLIC_KEYS"] = "not-a-key" },
			fails: []string{"webhooks: webhook: sendgrid:"}},
		{name: "maildir missing", edit: func(m map[string]string) { m["BOUNCED_MAILDIR"] = filepath.Join(t.TempDir(), "nope") },
			fails: []string{"nope: stat "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := good()
			tc.edit(m)
			var out bytes.Buffer
			err := run(context.Background(), []string{"check-config"}, func(k string) string { return m[k] }, nil, &out, testWriter{t})
			got := out.String()
			if len(tc.fails) == 0 && (err != nil || strings.Contains(got, "FAIL")) {
				t.Errorf("check-config = %v\n%s", err, got)
			}
			if len(tc.fails) > 0 && !errors.Is(err, ErrCheckFailed) {
				t.Errorf("check-config = %v, want ErrCheckFailed\n%s", err, got)
			}
			for _, want := range tc.fails {
				if !strings.Contains(got, "FAIL  ") || !strings.Contains(got, want) {
					t.Errorf("output lacks the failure %q:\n%s", want, got)
				}
			}
			for _, want := range tc.shows {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q:\n%s", want, got)
				}
			}
			for _, secret := range []string{dbPassword, admin, imapPassword, kit.Keys.Secret} {
				if strings.Contains(got, secret) {
					t.Errorf("check-config printed a secret (%s):\n%s", secret, got)
				}
			}
		})
	}
}

func TestStatsCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	db, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	hour := time.Now().UTC().Truncate(time.Hour).Add(-72 * time.Hour) // relative: no test depends on the date
	ev := func(addr string, typ parse.EventType, class parse.Class, reason parse.Reason) parse.Event {
		return parse.Event{Address: addr, Type: typ, Class: class, Reason: reason, OccurredAt: hour.Add(10 * time.Minute)}
	}
	in := store.Input{Source: "webhook", Provider: "generic", ContentType: "application/json", Raw: []byte("stats"),
		Status: store.ParseParsed, Kind: "events", Events: []parse.Event{
			ev("d1@gmail.com", parse.EventDelivery, parse.ClassNone, parse.ReasonDelivered),
			ev("d2@gmail.com", parse.EventDelivery, parse.ClassNone, parse.ReasonDelivered),
			ev("d3@yahoo.com", parse.EventDelivery, parse.ClassNone, parse.ReasonDelivered),
			ev("h@gmail.com", parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown),
			ev("s@yahoo.com", parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull),
			ev("c@gmail.com", parse.EventComplaint, parse.ClassComplaint, parse.ReasonComplaint),
		}}
	if _, err := db.Record(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := db.RecordSent(ctx, "", "", []store.SentCount{{At: hour, Count: 100}}); err != nil {
		t.Fatal(err)
	}
	statsOf := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, append([]string{"stats"}, args...), env("BOUNCED_DATABASE_URL", url), nil, &out, testWriter{t})
		return out.String(), err
	}
	rng := []string{"--since", hour.Add(-time.Hour).Format(time.RFC3339), "--until", hour.Add(2 * time.Hour).Format(time.RFC3339)}
	got, err := statsOf(rng...)
	if err != nil {
		t.Fatal(err)
	}
	// The same numbers as GET /v1/stats (one function answers both).
	want, err := db.Stats(ctx, store.StatsQuery{Since: hour.Add(-time.Hour), Until: hour.Add(2 * time.Hour), Bucket: store.BucketHour})
	if err != nil || len(want) != 1 {
		t.Fatalf("Stats() = %v, %v", want, err)
	}
	r := want[0]
	row := fmt.Sprintf("%s  %d  %s  %d  %d  %d  %d  %d  %d", hour.Format("2006-01-02 15:04"), r.Sent, r.SentBasis, r.Delivered, r.Bounced, r.Hard, r.Soft, r.Sender, r.Complaints)
	for _, s := range []string{hour.Add(-time.Hour).Format("2006-01-02 15:04") + " to " + hour.Add(2*time.Hour).Format("2006-01-02 15:04") + " UTC, by hour, every tenant", "sent", "bounce rate",
		"complaint rate", "2.00%", "1.00%"} {
		if !strings.Contains(got, s) {
			t.Errorf("stats output lacks %q:\n%s", s, got)
		}
	}
	if squeeze(got, row) == "" {
		t.Errorf("stats output lacks the row %q (the store's numbers):\n%s", row, got)
	}
	t.Logf("stats:\n%s", got)
	got, err = statsOf(append(rng, "--group-by", "domain")...)
	t.Logf("stats --group-by domain:\n%s", got)
	if err != nil || !strings.Contains(got, "gmail.com") || !strings.Contains(got, "yahoo.com") {
		t.Errorf("stats --group-by domain = %v:\n%s", err, got)
	}
	got, err = statsOf(append(rng, "--group-by", "mailbox_provider")...)
	t.Logf("stats --group-by mailbox_provider:\n%s", got)
	if err != nil || squeeze(got, "google") == "" || squeeze(got, "yahoo") == "" || strings.Contains(got, "gmail.com") {
		t.Errorf("stats --group-by mailbox_provider = %v, want google and yahoo rows:\n%s", err, got)
	}
	if got, err := statsOf("--since", "2020-01-01T00:00:00Z", "--until", "2020-01-02T00:00:00Z"); err != nil || !strings.Contains(got, "no events in this range") {
		t.Errorf("stats of an empty range = %v:\n%s", err, got)
	}
	var ue usageError
	for _, bad := range [][]string{{"--bucket", "week"}, {"--group-by", "color"}, {"--since", "yesterday"}, {"--tenant", "Not A Tenant"}, {"extra"}} {
		if _, err := statsOf(bad...); !errors.As(err, &ue) {
			t.Errorf("stats %v = %v, want a usage error", bad, err)
		}
	}
}

// squeeze finds want in got with runs of spaces taken as one space.
func squeeze(got, want string) string {
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for line := range strings.Lines(got) {
		if strings.Contains(norm(line), norm(want)) {
			return line
		}
	}
	return ""
}
