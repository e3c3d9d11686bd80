package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// TestEventEvidence: the evidence that decided a recipient is stored with
// its event, by both the single and the batch path, and read back; events
// without it (actions on the list) have none.
func TestEventEvidence(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.Open(t, store.Options{})
	rep, err := parse.Parse([]byte("From: MAILER-DAEMON@mx.example.org\r\nTo: s@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n" +
		"Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; gone@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown\r\n\r\n" +
		"Final-Recipient: rfc822; policy@example.com\r\nAction: failed\r\nStatus: 5.7.1\r\n" +
		"Diagnostic-Code: smtp; 550 5.7.1 <policy@example.com>: Recipient address rejected: Access denied\r\n\r\n--B--\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	evs := parse.Events(rep, time.Now())
	if len(evs) != 2 || evs[0].Evidence == nil || evs[0].Evidence.From != parse.EvidenceStatus {
		t.Fatalf("EventsFromReport() = %+v, want two events, the first decided by its status", evs)
	}
	if _, err := db.Record(ctx, input("evidence-single", evs[0])); err != nil {
		t.Fatal(err)
	}
	res := db.RecordBatch(ctx, []store.Input{input("evidence-batch", evs[1])})
	if len(res) != 1 || res[0].Err != nil {
		t.Fatalf("RecordBatch() = %+v", res)
	}
	for _, tt := range []struct {
		addr  string
		from  parse.EvidenceSource
		class parse.Class
	}{
		{"gone@example.com", parse.EvidenceStatus, parse.ClassHard},
		{"policy@example.com", parse.EvidenceStatus, parse.ClassSoft},
	} {
		got, _, err := db.ListEvents(ctx, store.EventFilter{Address: tt.addr})
		if err != nil || len(got) != 1 {
			t.Fatalf("ListEvents(%s) = %d events, %v", tt.addr, len(got), err)
		}
		e := got[0]
		if e.Evidence == nil || e.Evidence.From != tt.from || e.Evidence.Rule == "" || e.Class != tt.class {
			t.Errorf("event of %s: class %s, evidence %+v; want class %s, evidence from %s", tt.addr, e.Class, e.Evidence, tt.class, tt.from)
		}
	}
	if _, err := db.DeleteSuppression(ctx, "gone@example.com", store.GlobalScope, "test", "evidence test"); err != nil {
		t.Fatal(err)
	}
	got, _, err := db.ListEvents(ctx, store.EventFilter{Address: "gone@example.com", Type: parse.EventSuppressionRemoved})
	if err != nil || len(got) != 1 || got[0].Evidence != nil {
		t.Errorf("suppression_removed events = %+v, %v; want one without evidence", got, err)
	}
}
