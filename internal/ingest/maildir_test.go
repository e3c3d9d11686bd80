package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// deliver writes messages into a Maildir's new/ as an MTA does: through
// tmp/, then renamed.
func deliver(t testing.TB, dir string, msgs []corpusMessage) {
	t.Helper()
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		name := fmt.Sprintf("%d.M%dP%d.test,S=%d", time.Now().Unix(), i, os.Getpid(), len(m.raw))
		tmp := filepath.Join(dir, "tmp", name)
		if err := os.WriteFile(tmp, m.raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "new", name)); err != nil {
			t.Fatal(err)
		}
	}
}

func files(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

type maildirRun struct {
	w      *ingest.Maildir
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startMaildir(t *testing.T, parent context.Context, cfg ingest.MaildirConfig, ing ingest.EnvelopeIngester) *maildirRun {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BackoffMin, cfg.BackoffMax = 10*time.Millisecond, 50*time.Millisecond
	w, err := ingest.NewMaildir(cfg, ingest.MaildirDeps{Ingester: ing, Logger: dbtest.Logger(t), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(parent)
	r := &maildirRun{w: w, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			r.stop(t)
		}
	})
	return r
}

func (r *maildirRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Maildir.Run = %v, want nil", err)
		}
		r.done <- nil // a second stop returns at once
	case <-time.After(30 * time.Second):
		t.Fatal("maildir watcher did not stop")
	}
}

func (r *maildirRun) counted(name, outcome string) int {
	return int(metricValue(r.reg, "bounced_mailbox_messages_total", map[string]string{"mailbox": name, "outcome": outcome}))
}

func newMail(t *testing.T) (*ingest.Mail, *store.DB, string) {
	t.Helper()
	url := dbtest.URL(t)
	db, err := store.Open(context.Background(), url, store.Options{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	mail, err := ingest.NewMail(db, ingest.MailOptions{Logger: dbtest.Logger(t), Lookup: db})
	if err != nil {
		t.Fatal(err)
	}
	return mail, db, url
}

func TestMaildirWatchNewToCurExactlyOnce(t *testing.T) {
	t.Parallel()
	mail, _, url := newMail(t)
	dir := filepath.Join(t.TempDir(), "Maildir")
	msgs := corpus(t, 6)
	deliver(t, dir, msgs[:len(msgs)/2])
	r := startMaildir(t, context.Background(), ingest.MaildirConfig{Name: "local", Path: dir, PollInterval: time.Hour}, mail)
	eventually(t, "new/ to empty", func() bool { return len(files(t, filepath.Join(dir, "new"))) == 0 })
	// Mail delivered while watching arrives by file notification
	// (polling is off: an hour).
	deliver(t, dir, msgs[len(msgs)/2:])
	eventually(t, "the later mail to be read", func() bool {
		return len(files(t, filepath.Join(dir, "new"))) == 0 && len(files(t, filepath.Join(dir, "cur"))) == len(msgs)
	})
	for _, name := range files(t, filepath.Join(dir, "cur")) {
		if !strings.HasSuffix(name, ":2,S") {
			t.Errorf("cur/%s lacks the seen flag", name)
		}
	}
	assertExactlyOnce(t, pgConn(t, url), expectEvents(msgs))
	if got := r.counted("local", ingest.OutcomeStored) + r.counted("local", ingest.OutcomeDuplicate); got != len(msgs) {
		t.Errorf("messages counted = %d, want %d", got, len(msgs))
	}
	if r.w.State() != ingest.StateWatching {
		t.Errorf("state = %s, want watching", r.w.State())
	}
}

// failingAfter commits, then reports failure for the n-th message: the
// process dies between commit and move.
type failingAfter struct {
	ingest.EnvelopeIngester
	after int32
	calls atomic.Int32
	crash func()
}

func (f *failingAfter) IngestEnvelope(ctx context.Context, env ingest.Envelope, raw []byte) (store.Outcome, error) {
	out, err := f.EnvelopeIngester.IngestEnvelope(ctx, env, raw)
	if err == nil && f.calls.Add(1) == f.after {
		f.crash()
		return store.Outcome{}, errors.New("crashed after commit")
	}
	return out, err
}

func TestMaildirRestartIsExactlyOnce(t *testing.T) {
	t.Parallel()
	mail, _, url := newMail(t)
	dir := filepath.Join(t.TempDir(), "Maildir")
	msgs := corpus(t, 10)
	deliver(t, dir, msgs)
	ctx, die := context.WithCancel(context.Background())
	first := startMaildir(t, ctx, ingest.MaildirConfig{Name: "local", Path: dir, PollInterval: time.Hour},
		&failingAfter{EnvelopeIngester: mail, after: 12, crash: die})
	<-ctx.Done()
	first.stop(t)
	conn := pgConn(t, url)
	stored := countRows(t, conn, `SELECT count(*) FROM raw_messages`)
	left := len(files(t, filepath.Join(dir, "new")))
	if stored+left <= len(msgs) {
		t.Fatalf("stored %d, %d left in new/: no message was committed and left unmoved", stored, left)
	}
	second := startMaildir(t, context.Background(), ingest.MaildirConfig{Name: "local", Path: dir, PollInterval: time.Hour}, mail)
	eventually(t, "new/ to empty", func() bool { return len(files(t, filepath.Join(dir, "new"))) == 0 })
	assertExactlyOnce(t, conn, expectEvents(msgs))
	if n := len(files(t, filepath.Join(dir, "cur"))); n != len(msgs) {
		t.Errorf("cur/ holds %d files, want %d", n, len(msgs))
	}
	if second.counted("local", ingest.OutcomeDuplicate) == 0 {
		t.Error("the restart saw no duplicate: the crash missed the window between commit and move")
	}
}

func TestMaildirActions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		action ingest.MaildirAction
		check  func(t *testing.T, dir string, n int)
	}{
		{"move", ingest.MaildirMove, func(t *testing.T, dir string, n int) {
			if got := len(files(t, filepath.Join(dir, ".Done", "cur"))); got != n {
				t.Errorf(".Done/cur holds %d, want %d", got, n)
			}
			if _, err := os.Stat(filepath.Join(dir, ".Done", "maildirfolder")); err != nil {
				t.Errorf(".Done is not a Maildir++ folder: %v", err)
			}
			if got := len(files(t, filepath.Join(dir, "cur"))); got != 0 {
				t.Errorf("cur/ holds %d, want 0", got)
			}
		}},
		{"delete", ingest.MaildirDelete, func(t *testing.T, dir string, n int) {
			if got := len(files(t, filepath.Join(dir, "cur"))) + len(files(t, filepath.Join(dir, ".Done", "cur"))); got != 0 {
				t.Errorf("%d files left after delete", got)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mail, _, url := newMail(t)
			dir := filepath.Join(t.TempDir(), "Maildir")
			msgs := corpus(t, 50)
			deliver(t, dir, msgs)
			startMaildir(t, context.Background(), ingest.MaildirConfig{Name: "local", Path: dir, Action: tc.action, MoveTo: "Done", PollInterval: time.Hour}, mail)
			eventually(t, "new/ to empty", func() bool { return len(files(t, filepath.Join(dir, "new"))) == 0 })
			tc.check(t, dir, len(msgs))
			assertExactlyOnce(t, pgConn(t, url), expectEvents(msgs))
		})
	}
}

func TestMaildirLeavesTooLargeAndSurvivesOutage(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "Maildir")
	big := corpusMessage{"big", append(dsntest.DSN("big", dsntest.Rcpt{Address: "big@example.com", Status: "5.1.1"}), make([]byte, 4096)...)}
	small := corpusMessage{"small", dsntest.DSN("small", dsntest.Rcpt{Address: "small@example.com", Status: "5.1.1"})}
	deliver(t, dir, []corpusMessage{big, small})
	// A database that is down: nothing moves, the watcher reports failure.
	down, err := store.Open(context.Background(), "postgres://bounced@127.0.0.1:"+fmt.Sprint(freePort(t))+"/x?connect_timeout=2", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(down.Close)
	downMail, _ := ingest.NewMail(down, ingest.MailOptions{})
	cfg := ingest.MaildirConfig{Name: "local", Path: dir, PollInterval: time.Hour, MaxMessageBytes: 4096, UnhealthyAfter: 100 * time.Millisecond}
	r := startMaildir(t, context.Background(), cfg, downMail)
	eventually(t, "the watcher to report failure", func() bool {
		return errors.Is(r.w.CheckHealth(context.Background()), ingest.ErrMailboxFailing)
	})
	if n := len(files(t, filepath.Join(dir, "new"))); n != 2 {
		t.Fatalf("new/ holds %d files during the outage, want 2", n)
	}
	if r.counted("local", ingest.OutcomeTooLarge) != 1 || r.counted("local", ingest.OutcomeFailed) == 0 {
		t.Errorf("too_large = %d, failed = %d; want 1 and some", r.counted("local", ingest.OutcomeTooLarge), r.counted("local", ingest.OutcomeFailed))
	}
	r.stop(t)
	// The database is back: the small message goes through, the big one stays.
	mail, _, _ := newMail(t)
	r = startMaildir(t, context.Background(), cfg, mail)
	eventually(t, "the small message", func() bool { return len(files(t, filepath.Join(dir, "cur"))) == 1 })
	if names := files(t, filepath.Join(dir, "new")); len(names) != 1 {
		t.Errorf("new/ = %v, want the big message left", names)
	}
	if err := r.w.CheckHealth(context.Background()); err != nil {
		t.Errorf("CheckHealth after recovery = %v", err)
	}
}

func TestMaildirVERPRecoversRecipient(t *testing.T) {
	t.Parallel()
	mail, db, _ := newMail(t)
	dir := filepath.Join(t.TempDir(), "Maildir")
	// An MTA's own bounce format the parser does not know: the VERP
	// address in Delivered-To names the recipient.
	raw := []byte("Delivered-To: bounces+gone=example.com+c42@bounce.example.net\n" +
		"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\n" +
		"To: bounces+gone=example.com+c42@bounce.example.net\n" +
		"Subject: failure notice\n\n" +
		"Sorry, we were unable to deliver your message.\n" +
		"Remote host said: 550 5.1.1 mailbox unavailable\n")
	deliver(t, dir, []corpusMessage{{"verp", raw}})
	cfg := ingest.MaildirConfig{Name: "local", Path: dir, PollInterval: time.Hour, VERP: parse.VERP{Prefix: "bounces", Separator: '+'}}
	startMaildir(t, context.Background(), cfg, mail)
	eventually(t, "the message", func() bool { return len(files(t, filepath.Join(dir, "cur"))) == 1 })
	sup, err := db.GetSuppression(context.Background(), "gone@example.com", store.GlobalScope)
	if err != nil {
		t.Fatalf("GetSuppression(gone@example.com) = %v: the VERP recipient was not recorded", err)
	}
	if sup.Reason != parse.ReasonUserUnknown {
		t.Errorf("reason = %s, want user_unknown from the 5.1.1 in the body", sup.Reason)
	}
}

// TestMaildirVERPReadsHeadersAsTheCLIDoes: a bounce whose Delivered-To and
// X-Original-To name different VERP recipients records the one `bounced
// parse --verp-prefix` names (X-Original-To): the service and the CLI
// read VERP through the same parse function. They used to disagree here.
func TestMaildirVERPReadsHeadersAsTheCLIDoes(t *testing.T) {
	t.Parallel()
	mail, db, _ := newMail(t)
	dir := filepath.Join(t.TempDir(), "Maildir")
	raw := []byte("Delivered-To: bounces+a=example.com@bounce.example.net\n" +
		"X-Original-To: bounces+b=example.com@bounce.example.net\n" +
		"From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\n" +
		"Subject: failure notice\n\n" +
		"Remote host said: 550 5.1.1 mailbox unavailable\n")
	verp := parse.VERP{Prefix: "bounces", Separator: '+'}
	cli, err := parse.ParseWithOptions(raw, parse.Options{VERP: verp})
	if err != nil || len(cli.Recipients) != 1 {
		t.Fatalf("ParseWithOptions() = %+v, %v", cli, err)
	}
	deliver(t, dir, []corpusMessage{{"verp", raw}})
	startMaildir(t, context.Background(), ingest.MaildirConfig{Name: "local", Path: dir, PollInterval: time.Hour, VERP: verp}, mail)
	eventually(t, "the message", func() bool { return len(files(t, filepath.Join(dir, "cur"))) == 1 })
	for _, addr := range []string{"a@example.com", "b@example.com"} {
		evs, _, err := db.ListEvents(context.Background(), store.EventFilter{Address: addr})
		if err != nil {
			t.Fatal(err)
		}
		if want := addr == cli.Recipients[0].Address; (len(evs) == 1) != want {
			t.Errorf("events of %s = %d; want one only for %s, the CLI's recipient", addr, len(evs), cli.Recipients[0].Address)
		}
	}
}
