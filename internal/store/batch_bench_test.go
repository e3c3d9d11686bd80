package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// benchInputs builds n webhook inputs of k events each, all distinct.
func benchInputs(run string, n, k int) []store.Input {
	ins := make([]store.Input, n)
	now := time.Now()
	for i := range ins {
		in := store.Input{Source: "webhook", Provider: "bench", ContentType: "application/json", Status: store.ParseParsed,
			Kind: "events", Raw: fmt.Appendf(nil, `{"run":%q,"i":%d}`, run, i), Result: map[string]int{"events": k}}
		for j := range k {
			ev := parse.Event{Address: fmt.Sprintf("b%d-%d.%s@bench%d.example.com", i, j, run, j%7), Type: parse.EventDelivery,
				Class: parse.ClassNone, Reason: parse.ReasonDelivered, OccurredAt: now, ProviderEventID: fmt.Sprintf("%s-%d-%d", run, i, j)}
			switch j % 5 {
			case 1:
				ev.Type, ev.Class, ev.Reason, ev.Status = parse.EventBounce, parse.ClassSoft, parse.ReasonMailboxFull, "4.2.2"
			case 2:
				ev.Type, ev.Class, ev.Reason, ev.Status = parse.EventBounce, parse.ClassHard, parse.ReasonUserUnknown, "5.1.1"
			}
			in.Events = append(in.Events, ev)
		}
		ins[i] = in
	}
	return ins
}

// BenchmarkRecordBatch records batches on a durable (fsync on) server:
// many single-event webhook requests in one batch, and one SendGrid-sized
// batch of 500 events. Compare events/s with BenchmarkRecordOneByOne.
func BenchmarkRecordBatch(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, dbtest.DurableURL(b), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for _, shape := range []struct{ inputs, events int }{{64, 1}, {1, 500}} {
		b.Run(fmt.Sprintf("inputs=%d/events=%d", shape.inputs, shape.events), func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				ins := benchInputs(fmt.Sprintf("b%d%d%d", shape.inputs, shape.events, i), shape.inputs, shape.events)
				for _, r := range db.RecordBatch(ctx, ins) {
					if r.Err != nil {
						b.Fatal(r.Err)
					}
				}
			}
			b.ReportMetric(float64(b.N*shape.inputs*shape.events)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkRecordOneByOne is the baseline: one transaction per event.
func BenchmarkRecordOneByOne(b *testing.B) {
	ctx := context.Background()
	db, err := store.Open(ctx, dbtest.DurableURL(b), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	for i := 0; b.Loop(); i++ {
		if _, err := db.Record(ctx, benchInputs(fmt.Sprintf("one%d", i), 1, 1)[0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
