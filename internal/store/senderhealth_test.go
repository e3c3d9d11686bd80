package store

import (
	"fmt"
	"testing"
	"time"
)

// TestFoldSenderHealth folds counted rows without a database: totals by
// each dimension, the biggest MTAs and sources kept and the rest folded
// into (other) alike in totals and buckets, buckets oldest first.
func TestFoldSenderHealth(t *testing.T) {
	t.Parallel()
	h0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	h1 := h0.Add(time.Hour)
	counts := []senderCount{
		{bucket: h1, dim: dimReason, key: "auth_required", n: 3},
		{bucket: h0, dim: dimReason, key: "auth_required", n: 1},
		{bucket: h0, dim: dimReason, key: "protocol_error", n: 2},
		{bucket: h0, dim: dimMTA, key: "a.example", n: 2},
		{bucket: h1, dim: dimMTA, key: "a.example", n: 2},
		{bucket: h0, dim: dimMTA, key: "b.example", n: 1},
		{bucket: h1, dim: dimMTA, key: "c.example", n: 1},
		{bucket: h0, dim: dimSource, key: "http", n: 3},
		{bucket: h1, dim: dimSource, key: "webhook", provider: "ses", n: 3},
	}
	codes := []SenderCode{{Reason: "protocol_error", Status: "5.5.1", Count: 2}, {Reason: "auth_required", Status: "5.7.0", Count: 4}}
	tests := []struct {
		name              string
		groups            int
		byMTA, bySource   string
		h0MTA, h1MTA      string
		h0Source, h1Total string
	}{
		{"every group", 0, "a.example=4 b.example=1 c.example=1", "http=3 webhook/ses=3",
			"map[a.example:2 b.example:1]", "map[a.example:2 c.example:1]", "map[http:3]", "3"},
		{"one group", 1, "a.example=4 (other)=2", "http=3 (other)=3",
			"map[(other):1 a.example:2]", "map[(other):1 a.example:2]", "map[http:3]", "3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := foldSenderHealth(SenderHealthQuery{Groups: tt.groups}, counts, append([]SenderCode(nil), codes...), nil)
			if got.Total != 6 {
				t.Errorf("Total = %d, want 6", got.Total)
			}
			if s := fmt.Sprint(got.ByReason); s != "[{auth_required 4} {protocol_error 2}]" {
				t.Errorf("ByReason = %s", s)
			}
			if s := countString(got.ByReportingMTA); s != tt.byMTA {
				t.Errorf("ByReportingMTA = %s, want %s", s, tt.byMTA)
			}
			var src []SenderCount
			for _, s := range got.BySource {
				src = append(src, SenderCount{Key: s.Key, Count: s.Count})
			}
			if s := countString(src); s != tt.bySource {
				t.Errorf("BySource = %s, want %s", s, tt.bySource)
			}
			if len(got.Series) != 2 || !got.Series[0].BucketStart.Equal(h0) || !got.Series[1].BucketStart.Equal(h1) {
				t.Fatalf("Series = %+v, want the two hours oldest first", got.Series)
			}
			if s := fmt.Sprint(got.Series[0].ByReportingMTA); s != tt.h0MTA {
				t.Errorf("first hour by MTA = %s, want %s", s, tt.h0MTA)
			}
			if s := fmt.Sprint(got.Series[1].ByReportingMTA); s != tt.h1MTA {
				t.Errorf("second hour by MTA = %s, want %s", s, tt.h1MTA)
			}
			if s := fmt.Sprint(got.Series[0].BySource); s != tt.h0Source {
				t.Errorf("first hour by source = %s, want %s", s, tt.h0Source)
			}
			if s := fmt.Sprint(got.Series[1].Total); s != tt.h1Total || got.Series[0].Total != 3 {
				t.Errorf("hour totals %d, %d, want 3, %s", got.Series[0].Total, got.Series[1].Total, tt.h1Total)
			}
			if got.Codes[0].Status != "5.7.0" {
				t.Errorf("Codes = %+v, want the most frequent first", got.Codes)
			}
		})
	}
}

func countString(cs []SenderCount) string {
	s := ""
	for i, c := range cs {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", c.Key, c.Count)
	}
	return s
}
