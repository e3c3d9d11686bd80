package store

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// rateString prints a rate as %v prints a float, or null.
func rateString(r *float64) string {
	if r == nil {
		return "null"
	}
	return fmt.Sprint(*r)
}

func TestRate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		n, d int64
		want string
	}{
		{0, 0, "null"}, {3, 0, "null"}, {0, 4, "0"}, {1, 4, "0.25"}, {4, 4, "1"}, {5, 4, "null"}, {-1, 4, "null"},
	} {
		if got := rateString(Rate(tt.n, tt.d)); got != tt.want {
			t.Errorf("Rate(%d, %d) = %s, want %s", tt.n, tt.d, got, tt.want)
		}
	}
}

// TestFoldStatsRates: a rate is null without a denominator for the same
// group, and always within 0..1 (once complaint_rate was 2.0 with no sent
// volume).
func TestFoldStatsRates(t *testing.T) {
	t.Parallel()
	h0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		q       StatsQuery
		counted []StatsRow
		sent    []sentVolume
		want    string
	}{
		{"complaints over fewer observed messages", StatsQuery{Groups: 20},
			[]StatsRow{{BucketStart: h0, Delivered: 1, Complaints: 2}}, nil,
			"sent 1 observed bounce 0 complaint null"},
		{"complaints only", StatsQuery{Groups: 20},
			[]StatsRow{{BucketStart: h0, Complaints: 2}}, nil,
			"sent 0 observed bounce null complaint null"},
		{"a report of fewer than bounced", StatsQuery{Groups: 20},
			[]StatsRow{{BucketStart: h0, Hard: 5, Delivered: 1}}, []sentVolume{{h0, "", 2}},
			"sent 2 reported bounce null complaint 0"},
		{"a report covering the events", StatsQuery{Groups: 20},
			[]StatsRow{{BucketStart: h0, Hard: 5, Delivered: 1, Complaints: 1}}, []sentVolume{{h0, "", 100}},
			"sent 100 reported bounce 0.05 complaint 0.01"},
		{"a domain without a report of its own", StatsQuery{GroupBy: GroupDomain, Groups: 20},
			[]StatsRow{{BucketStart: h0, Key: "other.example", Hard: 3}}, []sentVolume{{h0, "gmail.com", 10}},
			"sent 10 reported bounce 0 complaint 0; sent 3 observed bounce 1 complaint 0"},
		{"by reason, a bucket total of fewer", StatsQuery{GroupBy: GroupReason, Groups: 20},
			[]StatsRow{{BucketStart: h0, Key: "user_unknown", Hard: 3}}, []sentVolume{{h0, "", 2}},
			"sent 2 reported bounce null complaint 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ""
			for i, r := range foldStats(tt.q, tt.counted, tt.sent) {
				if i > 0 {
					got += "; "
				}
				got += fmt.Sprintf("sent %d %s bounce %s complaint %s", r.Sent, r.SentBasis, rateString(r.BounceRate), rateString(r.ComplaintRate))
			}
			if got != tt.want {
				t.Errorf("foldStats() = %s, want %s", got, tt.want)
			}
		})
	}
	// Whatever is counted and reported, every rate is null or in 0..1.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var counted []StatsRow
		var sent []sentVolume
		for i := range 4 {
			b := h0.Add(time.Duration(rng.IntN(3)) * time.Hour)
			key := fmt.Sprintf("k%d", i%3)
			counted = append(counted, StatsRow{BucketStart: b, Key: key, Delivered: rng.Int64N(5), Hard: rng.Int64N(5),
				Soft: rng.Int64N(5), Sender: rng.Int64N(3), Complaints: rng.Int64N(8)})
			if rng.IntN(2) == 0 {
				sent = append(sent, sentVolume{b, key, rng.Int64N(10)})
			}
		}
		for _, g := range []StatsGroup{GroupNone, GroupDomain, GroupReason} {
			for _, r := range foldStats(StatsQuery{GroupBy: g, Groups: 2}, counted, sent) {
				for _, rate := range []*float64{r.BounceRate, r.ComplaintRate} {
					if rate != nil && (*rate < 0 || *rate > 1) {
						t.Fatalf("foldStats(%s) row %+v has a rate %v outside 0..1", g, r, *rate)
					}
				}
			}
		}
	}
}
