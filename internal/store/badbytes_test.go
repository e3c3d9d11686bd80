package store_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/logtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// TestProviderEventIDsAreCleaned: a provider event id holding a NUL byte,
// invalid UTF-8 or too many bytes for an index is stored in a clean form;
// it neither fails its input nor makes its group-commit batch fall back
// to one transaction per input.
func TestProviderEventIDsAreCleaned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs logtest.Buffer
	db := dbtest.Open(t, store.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// Random letters: PostgreSQL would compress a repeated one below the
	// index's row size limit.
	rnd := rand.New(rand.NewPCG(1, 2))
	letters := make([]byte, 10000)
	for i := range letters {
		letters[i] = byte('a' + rnd.IntN(26))
	}
	long := string(letters)
	ids := []string{"a\x00b", "c\xffd", long, long + "y", "plain"}
	ins := make([]store.Input, len(ids))
	for i, id := range ids {
		ins[i] = store.Input{Source: "webhook", Provider: "generic", ContentType: "application/json",
			Raw: []byte("input " + id), Status: store.ParseParsed, Kind: "events",
			Events: []parse.Event{{Address: "u@example.com", Type: parse.EventDelivery, Class: parse.ClassNone,
				Reason: parse.ReasonDelivered, ProviderEventID: id, OccurredAt: time.Now()}}}
	}
	for i, r := range db.RecordBatch(ctx, ins) {
		if r.Err != nil || r.Outcome.Recorded != 1 {
			t.Errorf("RecordBatch input %d (id %.20q) = %+v, %v, want one event recorded", i, ids[i], r.Outcome, r.Err)
		}
	}
	if strings.Contains(logs.String(), "batch refused") {
		t.Errorf("the batch fell back to one transaction per input:\n%s", logs.String())
	}
	// Cleaned ids still make their events idempotent.
	again := ins[0]
	again.Raw = []byte("another body, same event")
	out, err := db.Record(ctx, again)
	if err != nil || out.Recorded != 0 {
		t.Errorf("Record of the same NUL id again = %+v, %v, want nothing recorded", out, err)
	}
}
