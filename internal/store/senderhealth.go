package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/parse"
)

// Sender health limits.
const (
	SenderExamplesDefault = 10
	SenderExamplesMax     = 100
)

// SenderHealthQuery selects the sender-side failures SenderHealth counts:
// bounces of class sender (authentication, relay, protocol, SPF, DKIM and
// DMARC failures), which never suppress and are the sender's to fix.
type SenderHealthQuery struct {
	Tenant     string // with OnlyTenant: only this tenant ("" = untenanted)
	OnlyTenant bool
	Since      time.Time // inclusive
	Until      time.Time // exclusive
	Bucket     StatsBucket
	// Groups is how many reporting MTAs and sources are named, the
	// biggest; the rest fold into StatsOtherKey (0: StatsGroupsDefault).
	Groups int
	// Examples is how many of the latest failures are returned (0:
	// SenderExamplesDefault; at most SenderExamplesMax).
	Examples int
}

func (q SenderHealthQuery) check() error {
	return StatsQuery{Since: q.Since, Until: q.Until, Bucket: q.Bucket}.check()
}

// SenderCount is how many sender-side failures had one reason or one
// reporting MTA.
type SenderCount struct {
	Key   string `json:"key"`
	Count int64  `json:"count"`
}

// SenderSourceCount is how many sender-side failures came from one
// source (and provider).
type SenderSourceCount struct {
	// Key is the source, or source/provider ("webhook/sendgrid"), or
	// StatsOtherKey for the sources beyond the requested number.
	Key      string `json:"key"`
	Source   string `json:"source"`
	Provider string `json:"provider"`
	Count    int64  `json:"count"`
}

// SenderCode is how many sender-side failures of one reason carried one
// status code and reply code.
type SenderCode struct {
	Reason    parse.Reason
	Status    string
	ReplyCode string
	Count     int64
}

// SenderBucket is one time bucket of sender-side failures, broken down
// three ways by the keys of SenderHealth's totals.
type SenderBucket struct {
	BucketStart    time.Time        `json:"bucket_start"`
	Total          int64            `json:"total"`
	ByReason       map[string]int64 `json:"by_reason"`
	ByReportingMTA map[string]int64 `json:"by_reporting_mta"`
	BySource       map[string]int64 `json:"by_source"`
}

// SenderHealth is the sender-side failures of a window.
type SenderHealth struct {
	Total          int64
	ByReason       []SenderCount       // biggest first
	ByReportingMTA []SenderCount       // biggest first, the rest as StatsOtherKey last
	BySource       []SenderSourceCount // biggest first, the rest as StatsOtherKey last
	Codes          []SenderCode        // biggest first
	Series         []SenderBucket      // oldest first; buckets with failures only
	Examples       []Event             // newest first
}

// senderCount is one row of the counting query: a bucket and the value
// of one dimension (reason, reporting MTA, or source and provider).
type senderCount struct {
	bucket   time.Time
	dim      senderDim
	key      string
	provider string // with dimSource
	n        int64
}

type senderDim int

// The dimensions, as GROUPING(reason, reporting_mta) numbers them.
const (
	dimReason senderDim = 1
	dimMTA    senderDim = 2
	dimSource senderDim = 3
)

// SenderHealth counts the sender-side failures of q's window by reason,
// reporting MTA and source, in total and per time bucket, with the
// status codes seen and the latest examples. It returns ErrBadStats for
// a malformed window.
func (db *DB) SenderHealth(ctx context.Context, q SenderHealthQuery) (SenderHealth, error) {
	if err := q.check(); err != nil {
		return SenderHealth{}, err
	}
	args := []any{q.Since, q.Until}
	cond := `type = 'bounce' AND class = 'sender' AND occurred_at >= $1 AND occurred_at < $2`
	if q.OnlyTenant {
		args = append(args, q.Tenant)
		cond += ` AND tenant = $3`
	}
	bucketArg := fmt.Sprintf("$%d", len(args)+1)
	examples := cmp.Or(max(q.Examples, 0), SenderExamplesDefault)
	examples = min(examples, SenderExamplesMax)
	var counts []senderCount
	var codes []SenderCode
	var latest []Event
	err := db.transact(ctx, func(tx pgx.Tx) error {
		counts, codes, latest = nil, nil, nil
		// One pass over the window's failures, three breakdowns.
		rows, err := tx.Query(ctx, `
			SELECT bucket, coalesce(reason, ''), coalesce(reporting_mta, ''), coalesce(source, ''), coalesce(provider, ''),
				count(*), GROUPING(reason, reporting_mta)
			FROM (SELECT date_trunc(`+bucketArg+`, occurred_at, 'UTC') AS bucket, reason, reporting_mta, source, provider
				FROM events WHERE `+cond+`) e
			GROUP BY GROUPING SETS ((bucket, reason), (bucket, reporting_mta), (bucket, source, provider))`,
			append(slices.Clone(args), string(q.Bucket))...)
		if err != nil {
			return err
		}
		var c senderCount
		var reason, mta, source string
		if _, err := pgx.ForEachRow(rows, []any{&c.bucket, &reason, &mta, &source, &c.provider, &c.n, &c.dim}, func() error {
			switch c.dim {
			case dimReason:
				c.key, c.provider = reason, ""
			case dimMTA:
				c.key, c.provider = mta, ""
			default:
				c.key = source
			}
			counts = append(counts, c)
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `
			SELECT reason, status, reply_code, count(*) FROM events WHERE `+cond+` GROUP BY 1, 2, 3`, args...)
		if err != nil {
			return err
		}
		var code SenderCode
		if _, err := pgx.ForEachRow(rows, []any{&code.Reason, &code.Status, &code.ReplyCode, &code.Count}, func() error {
			codes = append(codes, code)
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT `+eventColumns+` FROM events WHERE `+cond+`
			ORDER BY occurred_at DESC, id DESC LIMIT `+fmt.Sprint(examples), args...)
		if err != nil {
			return err
		}
		latest, err = pgx.CollectRows(rows, scanEvent)
		return err
	})
	if err != nil {
		return SenderHealth{}, err
	}
	return foldSenderHealth(q, counts, codes, latest), nil
}

// foldSenderHealth turns the counted rows into SenderHealth: totals by
// each dimension, the q.Groups biggest reporting MTAs and sources named
// and the rest folded into StatsOtherKey (in totals and buckets alike),
// and the buckets oldest first. It reads no database.
func foldSenderHealth(q SenderHealthQuery, counts []senderCount, codes []SenderCode, examples []Event) SenderHealth {
	groups := cmp.Or(max(q.Groups, 0), StatsGroupsDefault)
	groups = min(groups, StatsGroupsMax)
	sourceKey := func(source, provider string) string {
		if provider == "" {
			return source
		}
		return source + "/" + provider
	}
	totals := map[senderDim]map[string]int64{dimReason: {}, dimMTA: {}, dimSource: {}}
	sources := map[string]SenderSourceCount{}
	for _, c := range counts {
		key := c.key
		if c.dim == dimSource {
			key = sourceKey(c.key, c.provider)
			sources[key] = SenderSourceCount{Key: key, Source: c.key, Provider: c.provider}
		}
		totals[c.dim][key] += c.n
	}
	// ranked sorts a dimension's totals biggest first (then by key), and
	// names the ones kept: all reasons, the biggest MTAs and sources.
	ranked := func(dim senderDim, keep int) ([]SenderCount, map[string]bool) {
		out := make([]SenderCount, 0, len(totals[dim]))
		for k, n := range totals[dim] {
			out = append(out, SenderCount{Key: k, Count: n})
		}
		slices.SortFunc(out, func(a, b SenderCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Key, b.Key))
		})
		kept := map[string]bool{}
		if len(out) > keep {
			var other int64
			for _, c := range out[keep:] {
				other += c.Count
			}
			out = append(out[:keep:keep], SenderCount{Key: StatsOtherKey, Count: other})
		}
		for _, c := range out {
			kept[c.Key] = true
		}
		return out, kept
	}
	h := SenderHealth{Codes: codes, Examples: examples}
	h.ByReason, _ = ranked(dimReason, len(totals[dimReason]))
	var keptMTA, keptSource map[string]bool
	h.ByReportingMTA, keptMTA = ranked(dimMTA, groups)
	var bySource []SenderCount
	bySource, keptSource = ranked(dimSource, groups)
	for _, c := range bySource {
		s := sources[c.Key]
		s.Key, s.Count = c.Key, c.Count
		h.BySource = append(h.BySource, s)
	}
	for _, c := range h.ByReason {
		h.Total += c.Count
	}
	buckets := map[time.Time]*SenderBucket{}
	for _, c := range counts {
		at := c.bucket.UTC()
		b := buckets[at]
		if b == nil {
			b = &SenderBucket{BucketStart: at, ByReason: map[string]int64{}, ByReportingMTA: map[string]int64{}, BySource: map[string]int64{}}
			buckets[at] = b
		}
		switch c.dim {
		case dimReason:
			b.ByReason[c.key] += c.n
			b.Total += c.n
		case dimMTA:
			key := c.key
			if !keptMTA[key] {
				key = StatsOtherKey
			}
			b.ByReportingMTA[key] += c.n
		case dimSource:
			key := sourceKey(c.key, c.provider)
			if !keptSource[key] {
				key = StatsOtherKey
			}
			b.BySource[key] += c.n
		}
	}
	h.Series = make([]SenderBucket, 0, len(buckets))
	for _, b := range buckets {
		h.Series = append(h.Series, *b)
	}
	slices.SortFunc(h.Series, func(a, b SenderBucket) int { return a.BucketStart.Compare(b.BucketStart) })
	slices.SortFunc(h.Codes, func(a, b SenderCode) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(string(a.Reason), string(b.Reason)),
			strings.Compare(a.Status, b.Status), strings.Compare(a.ReplyCode, b.ReplyCode))
	})
	return h
}
