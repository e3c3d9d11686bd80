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

// BenchmarkRecordEvent is Record of one input (a batch of one) with one
// event, for a soft failure (counted in the window) and a hard
// one (suppressed at once). The policy comes from memory, not the database.
func BenchmarkRecordEvent(b *testing.B) {
	ctx := context.Background()
	db := dbtest.Open(b, store.Options{})
	at := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name  string
		class parse.Class
		r     parse.Reason
	}{{"soft", parse.ClassSoft, parse.ReasonMailboxFull}, {"hard", parse.ClassHard, parse.ReasonUserUnknown}} {
		b.Run(tc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				addr := fmt.Sprintf("%s%d@example.com", tc.name, i%5000)
				ev := bounce(addr, tc.class, tc.r, "5.0.0", at.Add(time.Duration(i)*time.Millisecond))
				ev.OriginalMessageID = fmt.Sprintf("<m%d@example.org>", i)
				if _, err := db.Record(ctx, input(fmt.Sprintf("%s-%d-%d", tc.name, b.N, i), ev)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
