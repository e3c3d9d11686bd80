package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// TestReadyzReportsFailingMailbox runs a real IMAP ingester against a
// port nobody listens on: once it has failed for longer than allowed,
// /readyz answers 503 naming the mailbox, while /healthz stays 200.
func TestReadyzReportsFailingMailbox(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	db := dbtest.Open(t, store.Options{})
	mail, err := ingest.NewMail(db, ingest.MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	box, err := ingest.NewIMAP(ingest.IMAPConfig{
		Name: "bounces", Host: "127.0.0.1", Port: port, TLS: ingest.TLSPlain, User: "u", Password: "p",
		BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, UnhealthyAfter: 2 * time.Second,
	}, ingest.MailboxDeps{Ingester: mail, Leases: db, Checkpoints: db, Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := api.New(api.Deps{
		Ingester: mail, Messages: db, Suppressions: db, Events: db, DB: db,
		Health: []api.HealthChecker{box}, Logger: dbtest.Logger(t), Registerer: reg, Gatherer: reg,
	}, api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v := newValidator(t)
	h := &harness{t: t, srv: httptest.NewServer(s), api: s, db: db, reg: reg, valid: v}
	t.Cleanup(h.srv.Close)

	// Ready before the mailbox runs (checked before it starts, so that a
	// slow machine cannot make the failure old enough first).
	if r := h.get("/readyz"); r.status != 200 {
		t.Errorf("/readyz before the mailbox failed = %d %s", r.status, r.body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- box.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	var r response
	for r = h.get("/readyz"); r.status == 200 && time.Now().Before(deadline); r = h.get("/readyz") {
		time.Sleep(50 * time.Millisecond)
	}
	p := problemOf(t, r, 503)
	if d, _ := p["detail"].(string); !strings.Contains(d, `"bounces"`) || !strings.Contains(d, "failed since") {
		t.Errorf("detail %q does not name the failing mailbox", d)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if r := h.get("/healthz"); r.status != 200 {
		t.Errorf("/healthz = %d: a failing mailbox must not fail liveness", r.status)
	}
}

// TestMessageWithEnvelopeMatchesSpec: mail from a mailbox carries its
// envelope in the result, as openapi.yaml describes.
func TestMessageWithEnvelopeMatchesSpec(t *testing.T) {
	t.Parallel()
	h := newHarness(t, api.Options{})
	mail, err := ingest.NewMail(h.db, ingest.MailOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := mail.IngestEnvelope(context.Background(), ingest.Envelope{
		Source: "smtp", Provider: "smtp", RcptTo: []string{"bounces+who=example.com+c7@bounce.example.net"},
		VERP: parse.VERP{Prefix: "bounces", Separator: '+'},
	}, []byte("From: postmaster@mx.example.org\r\nSubject: undeliverable\r\n\r\nsorry\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := h.get(fmt.Sprintf("/v1/messages/%d", out.Message.ID))
	var m struct {
		EventIDs []int64 `json:"event_ids"`
		Result   struct {
			Envelope struct {
				VERPToken         string `json:"verp_token"`
				RecipientFromVERP bool   `json:"recipient_from_verp"`
			} `json:"envelope"`
		} `json:"result"`
	}
	r.json(t, &m)
	if r.status != 200 || m.Result.Envelope.VERPToken != "c7" || !m.Result.Envelope.RecipientFromVERP || len(m.EventIDs) != 1 {
		t.Errorf("GET message = %d %s", r.status, r.body)
	}
}
