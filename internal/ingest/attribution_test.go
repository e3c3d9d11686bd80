package ingest_test

import (
	"context"
	"errors"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/store"
)

// arfWithListID is an ARF abuse report about reader@isp.example, whose
// returned message names the list it was sent to.
func arfWithListID(id, listID string) []byte {
	return []byte("From: fbl@isp.example\r\nTo: fbl@example.org\r\nSubject: Report " + id + "\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=F\r\n\r\n" +
		"--F\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\r\n" +
		"--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: Test/1\r\nVersion: 1\r\n" +
		"Original-Rcpt-To: <reader@isp.example>\r\n\r\n" +
		"--F\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <" + id + "@example.org>\r\nFrom: news@example.org\r\n" +
		"To: reader@isp.example\r\nList-Id: News <" + listID + ">\r\nSubject: Hi\r\n\r\nHi\r\n--F--\r\n")
}

// TestMailAttribution: bounces and complaints received as mail are
// recorded in the tenant and list of the message reported sent that they
// name (VERP token before Message-ID), a mailbox bound to a tenant keeps
// them inside it, and an ARF's List-Id puts a complaint on its list
// under complaint_scope list, never on the global list.
func TestMailAttribution(t *testing.T) {
	t.Parallel()
	mail, db, _ := newMail(t)
	ctx := context.Background()
	pol := store.DefaultPolicy()
	pol.ComplaintScope = store.ComplaintList
	if _, err := db.PutPolicy(ctx, pol, "test"); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordSentMessages(ctx, "acme", []store.SentMessage{{MessageID: "<orig-acme1@example.org>", Scope: "tenant:acme/list:news"}}); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordSentMessages(ctx, "globex", []store.SentMessage{{MessageID: "tokg", Recipient: "vic@example.com"}}); err != nil {
		t.Fatal(err)
	}
	hard := func(addr string) dsntest.Rcpt {
		return dsntest.Rcpt{Address: addr, Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 user unknown"}
	}
	for _, tc := range []struct {
		name   string
		env    ingest.Envelope
		raw    []byte
		addr   string
		scope  string // of the event
		seenBy string // a scope that sees the suppression
		notBy  []string
	}{
		{name: "a Message-ID reported sent gives its tenant's list",
			raw: dsntest.DSN("acme1", hard("ann@example.com")), addr: "ann@example.com",
			scope: "tenant:acme/list:news", seenBy: "tenant:acme", notBy: []string{"global", "tenant:globex"}},
		{name: "the VERP token wins over the Message-ID",
			env: ingest.Envelope{VERP: verp, RcptTo: []string{"bounces+vic=example.com+tokg@bounce.example.net"}},
			raw: dsntest.DSN("acme1", hard("vic@example.com")), addr: "vic@example.com",
			scope: "tenant:globex", seenBy: "tenant:globex", notBy: []string{"global", "tenant:acme"}},
		{name: "a mailbox bound to a tenant ignores another tenant's token",
			env: ingest.Envelope{Tenant: "acme", VERP: verp, RcptTo: []string{"bounces+vic=example.com+tokg@bounce.example.net"}},
			raw: dsntest.DSN("acme-box", hard("vic@example.com")), addr: "vic@example.com",
			scope: "tenant:acme", seenBy: "tenant:acme", notBy: []string{"global"}},
		{name: "nothing known stays global",
			raw: dsntest.DSN("unknown", hard("gus@example.com")), addr: "gus@example.com",
			scope: "global", seenBy: "global"},
		{name: "an ARF with List-Id suppresses on its list under complaint_scope list",
			raw: arfWithListID("c1", "news.example.org"), addr: "reader@isp.example",
			scope: "list:news.example.org", seenBy: "list:news.example.org", notBy: []string{"global", "list:other"}},
		{name: "an ARF with List-Id from a bound mailbox stays in its tenant",
			env: ingest.Envelope{Tenant: "acme"},
			raw: arfWithListID("c2", "promo.example.org"), addr: "reader@isp.example",
			scope: "tenant:acme/list:promo.example.org", seenBy: "tenant:acme/list:promo.example.org",
			notBy: []string{"tenant:acme", "tenant:acme/list:news"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			env.Source = "imap"
			out, err := mail.IngestEnvelope(ctx, env, tc.raw)
			if err != nil || out.Recorded != 1 {
				t.Fatalf("IngestEnvelope() = %+v, %v, want one event", out, err)
			}
			evs, _, err := db.ListEvents(ctx, store.EventFilter{Address: tc.addr, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			var ev store.Event
			for _, e := range evs {
				if e.ID == out.Message.EventIDs[0] {
					ev = e
				}
			}
			if ev.Address != tc.addr || ev.Scope != tc.scope {
				t.Errorf("event %s in %q, want %s in %q", ev.Address, ev.Scope, tc.addr, tc.scope)
			}
			check := func(scope string) bool {
				got, err := db.CheckSuppressions(ctx, []string{tc.addr}, scope)
				if err != nil {
					t.Fatal(err)
				}
				_, ok := got[tc.addr]
				return ok
			}
			if !check(tc.seenBy) {
				t.Errorf("%s not suppressed as seen from %s", tc.addr, tc.seenBy)
			}
			for _, s := range tc.notBy {
				if check(s) {
					t.Errorf("%s suppressed as seen from %s, want not", tc.addr, s)
				}
			}
		})
	}
}

// TestSMTPTenants: the SMTP receiver records mail for a domain bound to a
// tenant in that tenant, and defers (451 4.5.3) a recipient of another
// tenant in the same transaction, so the sending MTA sends it apart.
func TestSMTPTenants(t *testing.T) {
	t.Parallel()
	mail, db, _ := newMail(t)
	rr := startReceiver(t, ingest.SMTPConfig{
		Domains: []string{"bounce.acme.example", "bounce.globex.example", "bounce.example.net"},
		Tenants: map[string]string{"bounce.acme.example": "acme", "bounce.globex.example": "globex"},
	}, mail)
	c, err := smtp.Dial(rr.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail(""); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("bounces@bounce.acme.example"); err != nil {
		t.Fatal(err)
	}
	err = c.Rcpt("bounces@bounce.globex.example")
	var perr *textproto.Error
	if !errors.As(err, &perr) || perr.Code != 451 || !strings.HasPrefix(perr.Msg, "4.5.3") {
		t.Fatalf("Rcpt(other tenant) = %v, want 451 4.5.3", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(dsntest.DSN("smtp-acme", dsntest.Rcpt{Address: "ann@example.com", Status: "5.1.1"})); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	evs, _, err := db.ListEvents(context.Background(), store.EventFilter{Address: "ann@example.com", Limit: 10})
	if err != nil || len(evs) != 1 || evs[0].Scope != "tenant:acme" {
		t.Fatalf("events of ann = %+v, %v, want one in tenant:acme", evs, err)
	}
}
