package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/store"
)

// TestMailgunReplayAcrossRestartsAndReplicas: Mailgun signs a timestamp
// and a token, not the body, so a signature lifted from a stored event
// (readable at /v1/messages/{id}/raw) onto a forged complaint must stay
// refused after a restart and on every replica: the tokens seen live in
// PostgreSQL, not in one process.
func TestMailgunReplayAcrossRestartsAndReplicas(t *testing.T) {
	t.Parallel()
	kit := newKit(t)
	db := dbtest.Open(t, store.Options{})
	// A receiver is a process: its own group committer, its own memory.
	process := func() *webhook.Receiver {
		g, err := store.NewGroupCommitter(db, store.GroupCommitOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(g.Close)
		rcv, err := webhook.New(kit.Config(), g, webhook.Options{Logger: dbtest.Logger(t), HTTPClient: kit.HTTPClient()})
		if err != nil {
			t.Fatal(err)
		}
		return rcv
	}
	receive := func(rcv *webhook.Receiver, body []byte) (store.Outcome, error) {
		return rcv.Receive(context.Background(), webhook.Mailgun, http.Header{}, bytes.NewReader(body))
	}
	now := time.Now()
	const token = "lifted-token-0123456789abcdef"
	real := kit.MailgunBodyWithToken(payload(t, webhook.Mailgun, "delivered.json"), now, token)
	forged := kit.MailgunBodyWithToken(payload(t, webhook.Mailgun, "complained.json"), now, token)
	first := process()
	if _, err := receive(first, real); err != nil {
		t.Fatal(err)
	}
	var rej *webhook.RejectError
	if _, err := receive(first, forged); !errors.As(err, &rej) || rej.Reason != "replayed" {
		t.Fatalf("forged body with a used token = %v, want a replayed rejection", err)
	}
	for name, rcv := range map[string]*webhook.Receiver{"after a restart": process(), "on another replica": process()} {
		if _, err := receive(rcv, forged); !errors.As(err, &rej) || rej.Reason != "replayed" {
			t.Errorf("forged body with a used token %s = %v, want a replayed rejection", name, err)
		}
		// Mailgun's own retry of the real request is still accepted.
		if out, err := receive(rcv, real); err != nil || out.Created {
			t.Errorf("retry of the real request %s = %+v, %v, want an acknowledged no-op", name, out, err)
		}
	}
	n, err := db.CountSuppressions(context.Background(), store.SuppressionFilter{})
	if err != nil || n != 0 {
		t.Errorf("%d suppressions after the forged complaints, %v; want none", n, err)
	}
}
