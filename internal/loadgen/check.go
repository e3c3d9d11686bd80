package loadgen

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// CheckResult compares what a run saw acknowledged with what the database
// holds.
type CheckResult struct {
	Acked      int      `json:"acked"`      // events acknowledged
	Stored     int      `json:"stored"`     // events of the run in the database
	Missing    int      `json:"missing"`    // acknowledged but not stored: lost
	Duplicates int      `json:"duplicates"` // stored more than once
	Unacked    int      `json:"unacked"`    // stored but never acknowledged (the answer was lost)
	Sample     []string `json:"sample,omitempty"`
}

// OK reports zero lost and zero duplicated events.
func (c CheckResult) OK() bool { return c.Missing == 0 && c.Duplicates == 0 }

func (c CheckResult) String() string {
	verdict := "OK: every acknowledged event is stored exactly once"
	if !c.OK() {
		verdict = fmt.Sprintf("FAILED: %d lost, %d duplicated (e.g. %v)", c.Missing, c.Duplicates, c.Sample)
	}
	return fmt.Sprintf("database check: %d acknowledged, %d stored, %d stored but unacknowledged; %s\n",
		c.Acked, c.Stored, c.Unacked, verdict)
}

// Check reads the run's events from the database at dbURL and compares
// them with the acknowledged requests.
func Check(ctx context.Context, dbURL, provider, runID string, eventsPerRequest int, acked []int) (CheckResult, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return CheckResult{}, fmt.Errorf("loadgen: check: %w", err)
	}
	defer conn.Close(ctx)
	q := `SELECT provider_event_id, count(*) FROM events
		WHERE source = 'webhook' AND provider = $1 AND provider_event_id LIKE $2
		GROUP BY provider_event_id`
	if provider == DSN {
		// A report's event is named by the returned message's id,
		// <orig-runID-i@example.org>, which becomes runID-i-0.
		q = `SELECT substring(original_message_id FROM '^<orig-(.*)@') || '-0', count(*) FROM events
			WHERE source = 'http' AND $1 <> '' AND original_message_id LIKE '<orig-' || $2
			GROUP BY 1`
	}
	rows, err := conn.Query(ctx, q, provider, runID+"-%")
	if err != nil {
		return CheckResult{}, fmt.Errorf("loadgen: check: %w", err)
	}
	stored := map[string]int{}
	var id string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { stored[id] = n; return nil }); err != nil {
		return CheckResult{}, fmt.Errorf("loadgen: check: %w", err)
	}
	res := CheckResult{Stored: len(stored)}
	seen := map[string]bool{}
	for _, i := range acked {
		for j := range eventsPerRequest {
			id := runID + "-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)
			if seen[id] {
				continue
			}
			seen[id] = true
			res.Acked++
			switch c := stored[id]; {
			case c == 0:
				res.Missing++
				if len(res.Sample) < 5 {
					res.Sample = append(res.Sample, "lost "+id)
				}
			case c > 1:
				res.Duplicates++
				if len(res.Sample) < 5 {
					res.Sample = append(res.Sample, "duplicated "+id)
				}
			}
		}
	}
	for id, c := range stored {
		if !seen[id] {
			res.Unacked++
		}
		if c > 1 && !seen[id] {
			res.Duplicates++
		}
	}
	return res, nil
}
