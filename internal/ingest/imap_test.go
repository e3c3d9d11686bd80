package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/store"
)

// imapEnv is a database and a Dovecot for one test.
type imapEnv struct {
	db   *store.DB
	url  string
	mail *ingest.Mail
	dc   *dovecot
}

func newIMAPEnv(t *testing.T, withTLS bool) *imapEnv {
	t.Helper()
	url := dbtest.URL(t)
	db, err := store.Open(context.Background(), url, store.Options{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	mail, err := ingest.NewMail(db, ingest.MailOptions{Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &imapEnv{db: db, url: url, mail: mail, dc: startDovecot(t, withTLS)}
}

// config is a plain-text loopback mailbox with test-sized timings.
func (e *imapEnv) config(name string) ingest.IMAPConfig {
	return ingest.IMAPConfig{
		Name: name, Host: e.dc.Host, Port: e.dc.Port, TLS: ingest.TLSPlain,
		User: e.dc.User, Password: e.dc.Password,
		BatchSize: 7, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		LeaseTTL: time.Second, PollInterval: time.Hour, IdleTimeout: time.Hour,
	}
}

// running is an ingester running in the background.
type running struct {
	m       *ingest.IMAP
	metrics *ingest.Metrics
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	done    chan error
	once    sync.Once
}

func (e *imapEnv) start(t *testing.T, cfg ingest.IMAPConfig, deps ingest.MailboxDeps) *running {
	t.Helper()
	return e.startCtx(t, context.Background(), cfg, deps)
}

// startCtx is start with a parent context the test can cancel itself.
func (e *imapEnv) startCtx(t *testing.T, parent context.Context, cfg ingest.IMAPConfig, deps ingest.MailboxDeps) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	metrics, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if deps.Ingester == nil {
		deps.Ingester = e.mail
	}
	if deps.Leases == nil {
		deps.Leases = e.db
	}
	deps.Checkpoints, deps.Logger, deps.Metrics = e.db, dbtest.Logger(t), metrics
	m, err := ingest.NewIMAP(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(parent)
	r := &running{m: m, metrics: metrics, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- m.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("IMAP ingester did not stop")
		}
	})
}

func (r *running) counted(mailbox, outcome string) int {
	return int(metricValue(r.reg, "bounced_mailbox_messages_total", map[string]string{"mailbox": mailbox, "outcome": outcome}))
}

func TestIMAPIngestsCorpusAndMovesMessages(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, false)
	msgs := corpus(t, 1)
	e.dc.appendMail(t, "INBOX", raws(msgs)...)
	want := expectEvents(e.dc.bodies(t, "INBOX"))
	cfg := e.config("bounces")
	cfg.BatchSize = 50
	r := e.start(t, cfg, ingest.MailboxDeps{})
	eventually(t, "the inbox to empty", func() bool { return e.dc.count(t, "INBOX") == 0 })
	if got := e.dc.count(t, "Processed"); got != len(msgs) {
		t.Errorf("Processed holds %d messages, want %d", got, len(msgs))
	}
	conn := pgConn(t, e.url)
	assertExactlyOnce(t, conn, want)
	if n := countRows(t, conn, `SELECT count(*) FROM raw_messages WHERE source = 'imap' AND provider = 'bounces'`); n != len(want) {
		t.Errorf("%d messages with source imap, provider bounces; want %d", n, len(want))
	}
	if got := r.counted("bounces", ingest.OutcomeStored) + r.counted("bounces", ingest.OutcomeDuplicate); got != len(msgs) {
		t.Errorf("bounced_mailbox_messages_total stored+duplicate = %d, want %d", got, len(msgs))
	}
	if got := r.counted("bounces", ingest.OutcomeStored); got != len(want) {
		t.Errorf("stored = %d, want %d distinct messages", got, len(want))
	}
	ts := metricValue(r.reg, "bounced_mailbox_last_success_timestamp_seconds", map[string]string{"mailbox": "bounces"})
	if age := time.Since(time.Unix(int64(ts), 0)); ts == 0 || age > time.Minute {
		t.Errorf("last success timestamp %v is not recent", ts)
	}
	eventually(t, "the ingester to idle", func() bool { return r.m.State() == ingest.StateIdle })
	if v := metricValue(r.reg, "bounced_mailbox_connection_state", map[string]string{"mailbox": "bounces", "state": "idle"}); v != 1 {
		t.Errorf("connection_state{state=idle} = %v, want 1", v)
	}
	if err := r.m.CheckHealth(context.Background()); err != nil {
		t.Errorf("CheckHealth = %v, want healthy", err)
	}
}

// crashingIngester records normally, then after the n-th commit runs
// crash before returning: a process dying between commit and move.
type crashingIngester struct {
	ingest.EnvelopeIngester
	after int32
	n     atomic.Int32
	crash func()
}

func (c *crashingIngester) IngestEnvelope(ctx context.Context, env ingest.Envelope, raw []byte) (store.Outcome, error) {
	out, err := c.EnvelopeIngester.IngestEnvelope(ctx, env, raw)
	if err == nil && c.n.Add(1) == c.after {
		c.crash()
	}
	return out, err
}

// deadLeaser never releases: a crashed process does not clean up.
type deadLeaser struct{ ingest.Leaser }

func (deadLeaser) ReleaseLease(context.Context, string, string) error { return nil }

func TestIMAPRestartMidBatchIsExactlyOnce(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, false)
	msgs := corpus(t, 5)
	e.dc.appendMail(t, "INBOX", raws(msgs)...)
	want := expectEvents(e.dc.bodies(t, "INBOX"))
	px := startProxy(t, e.dc.Addr())
	cfg := e.config("bounces")
	cfg.Port = px.port()

	// The first process dies after the 17th commit, inside its third
	// batch of 7: the connection drops before the batch is moved, and
	// it never releases its lease.
	ctx, die := context.WithCancel(context.Background())
	crashed := make(chan struct{})
	crasher := &crashingIngester{EnvelopeIngester: e.mail, after: 17, crash: func() {
		px.cut()
		die()
		close(crashed)
	}}
	first := e.startCtx(t, ctx, cfg, ingest.MailboxDeps{Ingester: crasher, Leases: deadLeaser{e.db}, Holder: "first"})
	<-crashed
	first.stop(t)
	conn := pgConn(t, e.url)
	stored := countRows(t, conn, `SELECT count(*) FROM raw_messages`)
	inbox := e.dc.count(t, "INBOX")
	t.Logf("after the crash: %d stored, %d of %d still in INBOX", stored, inbox, len(msgs))
	if stored+inbox <= len(msgs) {
		t.Fatalf("no message was committed but left unmoved (stored %d, inbox %d): the crash missed its window", stored, inbox)
	}

	second := e.start(t, cfg, ingest.MailboxDeps{Holder: "second"})
	eventually(t, "the second process to empty the inbox", func() bool { return e.dc.count(t, "INBOX") == 0 })
	if got := e.dc.count(t, "Processed"); got != len(msgs) {
		t.Errorf("Processed holds %d messages, want %d", got, len(msgs))
	}
	assertExactlyOnce(t, conn, want)
	if d := second.counted("bounces", ingest.OutcomeDuplicate); d == 0 {
		t.Errorf("the second process saw no duplicate: the messages committed before the crash were not read again")
	}
}

func TestIMAPReconnectsAfterConnectionLoss(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, false)
	msgs := corpus(t, 9)
	e.dc.appendMail(t, "INBOX", raws(msgs)...)
	want := expectEvents(e.dc.bodies(t, "INBOX"))
	px := startProxy(t, e.dc.Addr())
	cfg := e.config("bounces")
	cfg.Port = px.port()
	crasher := &crashingIngester{EnvelopeIngester: e.mail, after: 10, crash: px.cut}
	r := e.start(t, cfg, ingest.MailboxDeps{Ingester: crasher})
	eventually(t, "the inbox to empty", func() bool { return e.dc.count(t, "INBOX") == 0 })
	assertExactlyOnce(t, pgConn(t, e.url), want)
	if got := e.dc.count(t, "Processed"); got != len(msgs) {
		t.Errorf("Processed holds %d, want %d", got, len(msgs))
	}
	if r.counted("bounces", ingest.OutcomeDuplicate) == 0 {
		t.Error("no duplicate after the connection loss: the cut did not land between commit and move")
	}
}

func TestIMAPIdleDeliversNewMail(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, false)
	r := e.start(t, e.config("bounces"), ingest.MailboxDeps{})
	eventually(t, "the ingester to idle", func() bool { return r.m.State() == ingest.StateIdle })
	conn := pgConn(t, e.url)
	for i := range 3 {
		raw := dsntest.DSN(fmt.Sprintf("idle-%d", i), dsntest.Rcpt{Address: fmt.Sprintf("idle%d@example.com", i), Status: "5.1.1"})
		appended := time.Now()
		e.dc.appendMail(t, "INBOX", raw)
		// Polling is off (PollInterval and IdleTimeout are an hour):
		// only the server's IDLE notification can bring the message in.
		eventually(t, "the appended message to be recorded", func() bool {
			return countRows(t, conn, `SELECT count(*) FROM events WHERE address_key = $1`, fmt.Sprintf("idle%d@example.com", i)) == 1
		})
		t.Logf("message %d recorded %v after APPEND", i, time.Since(appended).Round(time.Millisecond))
		eventually(t, "the ingester to idle again", func() bool { return r.m.State() == ingest.StateIdle })
	}
	if got := e.dc.count(t, "Processed"); got != 3 {
		t.Errorf("Processed holds %d, want 3", got)
	}
}

func TestIMAPPollsWithoutIdle(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, false)
	cfg := e.config("bounces")
	cfg.DisableIdle, cfg.PollInterval = true, 100*time.Millisecond
	r := e.start(t, cfg, ingest.MailboxDeps{})
	eventually(t, "the ingester to poll", func() bool { return r.m.State() == ingest.StatePolling })
	e.dc.appendMail(t, "INBOX", dsntest.DSN("poll", dsntest.Rcpt{Address: "polled@example.com", Status: "5.1.1"}))
	conn := pgConn(t, e.url)
	eventually(t, "the polled message to be recorded", func() bool {
		return countRows(t, conn, `SELECT count(*) FROM suppressions WHERE address = 'polled@example.com'`) == 1
	})
	if r.m.State() == ingest.StateIdle {
		t.Error("ingester went idle with DisableIdle set")
	}
}

func TestIMAPActions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		action ingest.Action
		check  func(t *testing.T, dc *dovecot, n int)
	}{
		{"move", ingest.ActionMove, func(t *testing.T, dc *dovecot, n int) {
			if got := dc.count(t, "Done/Bounces"); got != n {
				t.Errorf("Done/Bounces holds %d, want %d", got, n)
			}
			if got := dc.count(t, "Work"); got != 0 {
				t.Errorf("Work holds %d after move, want 0", got)
			}
		}},
		{"flag", ingest.ActionFlag, func(t *testing.T, dc *dovecot, n int) {
			flags := dc.flags(t, "Work")
			if len(flags) != n {
				t.Fatalf("Work holds %d after flag, want %d", len(flags), n)
			}
			for i, f := range flags {
				if !hasFlag(f, imap.FlagSeen) || !hasFlag(f, "Handled") {
					t.Errorf("message %d flags %v, want \\Seen and Handled", i, f)
				}
			}
		}},
		{"delete", ingest.ActionDelete, func(t *testing.T, dc *dovecot, n int) {
			if got := dc.count(t, "Work"); got != 0 {
				t.Errorf("Work holds %d after delete, want 0", got)
			}
			if got := dc.count(t, "Done/Bounces"); got != -1 {
				t.Errorf("delete created the move folder (%d messages)", got)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newIMAPEnv(t, false)
			msgs := corpus(t, 40)
			e.dc.appendMail(t, "Work", raws(msgs)...)
			want := expectEvents(e.dc.bodies(t, "Work"))
			cfg := e.config("work")
			cfg.Folder, cfg.Action, cfg.MoveTo, cfg.Keyword = "Work", tc.action, "Done/Bounces", "Handled"
			r := e.start(t, cfg, ingest.MailboxDeps{})
			eventually(t, "every message to be read", func() bool {
				return r.counted("work", ingest.OutcomeStored)+r.counted("work", ingest.OutcomeDuplicate) == len(msgs) &&
					r.m.State() == ingest.StateIdle
			})
			tc.check(t, e.dc, len(msgs))
			assertExactlyOnce(t, pgConn(t, e.url), want)
			// A restart reads nothing again: the checkpoint (and for flag,
			// the keyword) says where it got to.
			r.stop(t)
			again := e.start(t, cfg, ingest.MailboxDeps{})
			eventually(t, "the restarted ingester to idle", func() bool { return again.m.State() == ingest.StateIdle })
			if n := again.counted("work", ingest.OutcomeDuplicate) + again.counted("work", ingest.OutcomeStored); n != 0 {
				t.Errorf("restart read %d messages again, want 0", n)
			}
		})
	}
}

func TestIMAPUIDValidityChange(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, false)
	cfg := e.config("bounces")
	cfg.Folder, cfg.Action, cfg.Keyword = "Bounces", ingest.ActionFlag, "Handled"
	first := dsntestN(0, 3)
	e.dc.appendMail(t, "Bounces", first...)
	r := e.start(t, cfg, ingest.MailboxDeps{})
	eventually(t, "the first messages", func() bool { return r.counted("bounces", ingest.OutcomeStored) == 3 })
	r.stop(t)
	cp, err := e.db.GetCheckpoint(context.Background(), "imap:bounces")
	if err != nil || cp.LastUID != 3 {
		t.Fatalf("checkpoint = %+v, %v; want last UID 3", cp, err)
	}
	// Recreating the folder gives it a new UIDVALIDITY; its UIDs restart
	// at 1, below the checkpoint.
	c := e.dc.client(t)
	if err := c.Delete("Bounces").Wait(); err != nil {
		t.Fatal(err)
	}
	e.dc.appendMail(t, "Bounces", dsntestN(3, 2)...)
	r = e.start(t, cfg, ingest.MailboxDeps{})
	eventually(t, "the messages under the new UIDVALIDITY", func() bool { return r.counted("bounces", ingest.OutcomeStored) == 2 })
	// The checkpoint is saved once the batch's messages are flagged, a
	// moment after they are counted.
	var cp2 store.Checkpoint
	eventually(t, "the checkpoint under the new UIDVALIDITY", func() bool {
		cp2, err = e.db.GetCheckpoint(context.Background(), "imap:bounces")
		return err == nil && cp2.UIDValidity != cp.UIDValidity
	})
	if cp2.LastUID != 2 {
		t.Errorf("checkpoint after the change = %+v; want a new UIDVALIDITY and last UID 2", cp2)
	}
}

func dsntestN(from, n int) [][]byte {
	var out [][]byte
	for i := from; i < from+n; i++ {
		out = append(out, dsntest.DSN(fmt.Sprintf("uv-%d", i), dsntest.Rcpt{Address: fmt.Sprintf("uv%d@example.com", i), Status: "5.1.1"}))
	}
	return out
}

func TestIMAPTLSModes(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, true)
	cases := []struct {
		name string
		mode ingest.TLSMode
		port int
	}{
		{"implicit", ingest.TLSImplicit, e.dc.TLSPort},
		{"starttls", ingest.TLSStartTLS, e.dc.Port},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			folder := "TLS" + tc.name
			e.dc.appendMail(t, folder, dsntestN(10+i, 1)...)
			cfg := e.config("tls-" + tc.name)
			cfg.TLS, cfg.Port, cfg.TLSConfig, cfg.Folder = tc.mode, tc.port, e.dc.TLSConfig, folder
			r := e.start(t, cfg, ingest.MailboxDeps{})
			eventually(t, "the message over TLS", func() bool { return r.counted(cfg.Name, ingest.OutcomeStored) == 1 })
		})
	}
	t.Run("untrusted certificate fails", func(t *testing.T) {
		cfg := e.config("tls-untrusted")
		cfg.TLS, cfg.Port, cfg.UnhealthyAfter = ingest.TLSImplicit, e.dc.TLSPort, time.Millisecond
		r := e.start(t, cfg, ingest.MailboxDeps{})
		eventually(t, "the ingester to report failure", func() bool {
			return errors.Is(r.m.CheckHealth(context.Background()), ingest.ErrMailboxFailing)
		})
	})
}

func TestIMAPConfigValidation(t *testing.T) {
	t.Parallel()
	ok := ingest.IMAPConfig{Name: "b", Host: "imap.example.net", User: "u", Password: "p"}
	deps := ingest.MailboxDeps{Ingester: &ingest.Mail{}, Leases: deadLeaser{}, Checkpoints: &store.DB{}}
	cases := []struct {
		name   string
		edit   func(*ingest.IMAPConfig)
		errHas string
	}{
		{"defaults are fine", func(*ingest.IMAPConfig) {}, ""},
		{"plain text to a remote host", func(c *ingest.IMAPConfig) { c.TLS = ingest.TLSPlain }, "in clear"},
		{"plain text allowed explicitly", func(c *ingest.IMAPConfig) { c.TLS, c.AllowPlain = ingest.TLSPlain, true }, ""},
		{"plain text on loopback", func(c *ingest.IMAPConfig) { c.TLS, c.Host = ingest.TLSPlain, "127.0.0.1" }, ""},
		{"unknown tls mode", func(c *ingest.IMAPConfig) { c.TLS = "ssl3" }, "tls"},
		{"unknown action", func(c *ingest.IMAPConfig) { c.Action = "archive" }, "action"},
		{"move into itself", func(c *ingest.IMAPConfig) { c.MoveTo = "INBOX" }, "move_to"},
		{"no host", func(c *ingest.IMAPConfig) { c.Host = "" }, "host"},
		{"no user", func(c *ingest.IMAPConfig) { c.User = "" }, "user"},
		{"bad port", func(c *ingest.IMAPConfig) { c.Port = 70000 }, "port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tc.edit(&cfg)
			_, err := ingest.NewIMAP(cfg, deps)
			if tc.errHas == "" && err != nil || tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)) {
				t.Errorf("NewIMAP(%s) = %v, want error containing %q", tc.name, err, tc.errHas)
			}
		})
	}
}

// TestIMAPLeaseOneReaderPerMailbox runs two ingesters on one mailbox:
// one reads, the other stands by and takes over when the first stops.
func TestIMAPLeaseOneReaderPerMailbox(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, false)
	msgs := corpus(t, 15)
	e.dc.appendMail(t, "INBOX", raws(msgs)...)
	want := expectEvents(e.dc.bodies(t, "INBOX"))
	cfg := e.config("shared")
	a := e.start(t, cfg, ingest.MailboxDeps{Holder: "a"})
	b := e.start(t, cfg, ingest.MailboxDeps{Holder: "b"})
	eventually(t, "the inbox to empty", func() bool { return e.dc.count(t, "INBOX") == 0 })
	eventually(t, "one reader and one standby", func() bool {
		sa, sb := a.m.State(), b.m.State()
		return sa == ingest.StateIdle && sb == ingest.StateStandby || sb == ingest.StateIdle && sa == ingest.StateStandby
	})
	reader, standby := a, b
	if b.m.State() == ingest.StateIdle {
		reader, standby = b, a
	}
	read := func(r *running) int {
		return r.counted("shared", ingest.OutcomeStored) + r.counted("shared", ingest.OutcomeDuplicate)
	}
	if read(reader) != len(msgs) || read(standby) != 0 {
		t.Errorf("reader read %d, standby %d; want %d and 0", read(reader), read(standby), len(msgs))
	}
	if err := standby.m.CheckHealth(context.Background()); err != nil {
		t.Errorf("standby CheckHealth = %v, want healthy", err)
	}
	assertExactlyOnce(t, pgConn(t, e.url), want)

	// The reader stops (releasing its lease): the standby takes over.
	reader.stop(t)
	eventually(t, "the standby to take over", func() bool { return standby.m.State() == ingest.StateIdle })
	e.dc.appendMail(t, "INBOX", dsntestN(50, 1)...)
	eventually(t, "the new reader to read new mail", func() bool { return read(standby) == 1 })
}

// TestIMAPLeaseTakenOverWhenHolderDies: a holder that dies keeps its
// lease row; the standby takes over once the lease runs out.
func TestIMAPLeaseTakenOverWhenHolderDies(t *testing.T) {
	t.Parallel()
	e := newIMAPEnv(t, false)
	cfg := e.config("shared")
	a := e.start(t, cfg, ingest.MailboxDeps{Holder: "a", Leases: deadLeaser{e.db}})
	eventually(t, "a to read", func() bool { return a.m.State() == ingest.StateIdle })
	b := e.start(t, cfg, ingest.MailboxDeps{Holder: "b"})
	eventually(t, "b to stand by", func() bool { return b.m.State() == ingest.StateStandby })
	a.stop(t) // dies: its lease row stays until it expires
	if holder, _, err := e.db.LeaseHolder(context.Background(), "imap:shared"); err == nil && holder != "a" {
		t.Fatalf("lease holder right after a died = %q, want a (not yet expired)", holder)
	}
	eventually(t, "b to take over", func() bool { return b.m.State() == ingest.StateIdle })
	e.dc.appendMail(t, "INBOX", dsntestN(60, 2)...)
	eventually(t, "b to read new mail", func() bool { return b.counted("shared", ingest.OutcomeStored) == 2 })
}

func TestIMAPUnreachableServerIsUnhealthy(t *testing.T) {
	t.Parallel()
	e := &imapEnv{}
	url := dbtest.URL(t)
	db, err := store.Open(context.Background(), url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	e.db = db
	e.mail, _ = ingest.NewMail(db, ingest.MailOptions{})
	e.dc = &dovecot{Host: "127.0.0.1", Port: freePort(t), User: "u", Password: "p"}
	cfg := e.config("down")
	cfg.UnhealthyAfter = 300 * time.Millisecond
	r := e.start(t, cfg, ingest.MailboxDeps{})
	if err := r.m.CheckHealth(context.Background()); err != nil {
		t.Errorf("CheckHealth at once = %v; a fresh failure is not yet unhealthy", err)
	}
	eventually(t, "the mailbox to be unhealthy", func() bool {
		return errors.Is(r.m.CheckHealth(context.Background()), ingest.ErrMailboxFailing)
	})
	if s := r.m.State(); s != ingest.StateBackoff && s != ingest.StateConnecting {
		t.Errorf("state = %s, want backoff or connecting", s)
	}
}

// TestCheckIMAP is what bounced check-config does with each mailbox: log
// in and examine the folder against a real Dovecot, leaving it as it was.
func TestCheckIMAP(t *testing.T) {
	t.Parallel()
	dc := startDovecot(t, true)
	dc.appendMail(t, "INBOX", dsntest.DSN("c1", dsntest.Rcpt{Address: "a@example.com", Status: "5.1.1"}),
		dsntest.DSN("c2", dsntest.Rcpt{Address: "b@example.com", Status: "5.1.1"}))
	good := ingest.IMAPConfig{Name: "check", Host: dc.Host, Port: dc.Port, TLS: ingest.TLSPlain, User: dc.User, Password: dc.Password}
	for _, tc := range []struct {
		name    string
		edit    func(*ingest.IMAPConfig)
		want    uint32
		wantErr string
	}{
		{name: "good", edit: func(*ingest.IMAPConfig) {}, want: 2},
		{name: "starttls", edit: func(c *ingest.IMAPConfig) { c.TLS, c.TLSConfig = ingest.TLSStartTLS, dc.TLSConfig }, want: 2},
		{name: "implicit tls", edit: func(c *ingest.IMAPConfig) { c.TLS, c.Port, c.TLSConfig = ingest.TLSImplicit, dc.TLSPort, dc.TLSConfig }, want: 2},
		{name: "untrusted certificate", edit: func(c *ingest.IMAPConfig) { c.TLS, c.Port = ingest.TLSImplicit, dc.TLSPort }, wantErr: "certificate"},
		{name: "wrong password", edit: func(c *ingest.IMAPConfig) { c.Password = "wrong" }, wantErr: "login as bounces"},
		{name: "missing folder", edit: func(c *ingest.IMAPConfig) { c.Folder = "Nope" }, wantErr: `folder "Nope"`},
		{name: "closed port", edit: func(c *ingest.IMAPConfig) { c.Port = freePort(t) }, wantErr: "connect to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := good
			tc.edit(&cfg)
			got, err := ingest.CheckIMAP(context.Background(), cfg)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("CheckIMAP() = %+v, %v; want an error with %q", got, err, tc.wantErr)
			case tc.wantErr == "" && (err != nil || got.Messages != tc.want || got.MoveToExists):
				t.Errorf("CheckIMAP() = %+v, %v; want %d messages, no Processed folder yet", got, err, tc.want)
			}
		})
	}
	// Nothing was moved, flagged or created.
	if n := dc.count(t, "INBOX"); n != 2 {
		t.Errorf("INBOX holds %d messages after the checks, want 2", n)
	}
	if flags := dc.flags(t, "INBOX"); len(flags) != 2 || hasFlag(flags[0], imap.FlagSeen) {
		t.Errorf("INBOX flags after the checks: %v", flags)
	}
}
