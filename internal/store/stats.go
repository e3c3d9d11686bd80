package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// StatsBucket is the width of a stats time bucket.
type StatsBucket string

// Buckets.
const (
	BucketHour StatsBucket = "hour"
	BucketDay  StatsBucket = "day"
)

// StatsGroup is what stats rows are broken down by.
type StatsGroup string

// Groupings.
const (
	GroupNone     StatsGroup = ""
	GroupDomain   StatsGroup = "domain"
	GroupSource   StatsGroup = "source"
	GroupProvider StatsGroup = "provider"
	GroupReason   StatsGroup = "reason"
	// GroupMailboxProvider breaks events down by the recipient domain's
	// mailbox provider (google, microsoft, yahoo..., other, unknown; see
	// internal/mailboxprovider), not the ingest source's provider.
	GroupMailboxProvider StatsGroup = "mailbox_provider"
)

// Valid reports whether g is a known grouping.
func (g StatsGroup) Valid() bool {
	switch g {
	case GroupNone, GroupDomain, GroupSource, GroupProvider, GroupReason, GroupMailboxProvider:
		return true
	}
	return false
}

// Stats limits.
const (
	StatsMaxBuckets    = 2000
	StatsGroupsMax     = 1000
	StatsGroupsDefault = 20
	// StatsOtherKey collects the groups beyond the requested number.
	StatsOtherKey = "(other)"
)

// StatsQuery selects what Stats counts.
type StatsQuery struct {
	Tenant     string // with OnlyTenant: only this tenant ("" = untenanted)
	OnlyTenant bool
	Since      time.Time
	Until      time.Time
	Bucket     StatsBucket
	GroupBy    StatsGroup
	Groups     int // the biggest groups kept; the rest fold into StatsOtherKey
}

// SentBasis says where a row's sent volume comes from.
type SentBasis string

// Sent bases.
const (
	SentReported SentBasis = "reported" // POST /v1/sent
	SentObserved SentBasis = "observed" // deliveries and failures seen
)

// StatsRow is one time bucket (and group).
type StatsRow struct {
	BucketStart time.Time `json:"bucket_start"`
	Key         string    `json:"key"`
	// Sent is the volume reported for the row's own group (see
	// reportedVolume), or else every delivery, acceptance and failure of
	// the group seen. With GroupSource or GroupReason it is the bucket's
	// total.
	Sent      int64     `json:"sent"`
	SentBasis SentBasis `json:"sent_basis"`
	Delivered int64     `json:"delivered"`
	// Accepted counts messages a provider accepted for delivery without
	// telling of their delivery (sent events: Mandrill's send).
	Accepted    int64 `json:"accepted"`
	Bounced     int64 `json:"bounced"`
	Hard        int64 `json:"hard"`
	Soft        int64 `json:"soft"`
	Sender      int64 `json:"sender"`
	Complaints  int64 `json:"complaints"`
	Delays      int64 `json:"delays"`
	AutoReplies int64 `json:"auto_replies"`
	// Unverified counts the events above that matched nothing reported
	// sent (BOUNCED_MAIL_TRUST=sent): recorded, never suppressing.
	Unverified int64 `json:"unverified"`
	// BounceRate is Bounced/Sent and ComplaintRate Complaints/Sent, each
	// nil where Sent cannot be its denominator (see Rate).
	BounceRate    *float64 `json:"bounce_rate"`
	ComplaintRate *float64 `json:"complaint_rate"`
}

// Rate is n out of d, within 0..1: nil without a denominator (d is 0),
// and nil when n exceeds d, which then does not count what n counts (a
// report of fewer messages sent than bounced, complaints about mail sent
// in earlier buckets). A rate is never clamped into range.
func Rate(n, d int64) *float64 {
	if d <= 0 || n < 0 || n > d {
		return nil
	}
	r := float64(n) / float64(d)
	return &r
}

// ErrBadStats means a stats query is malformed.
var ErrBadStats = errors.New("store: bad stats query")

func (q StatsQuery) check() error {
	if q.Bucket != BucketHour && q.Bucket != BucketDay {
		return fmt.Errorf("%w: bucket must be hour or day", ErrBadStats)
	}
	if !q.GroupBy.Valid() {
		return fmt.Errorf("%w: unknown group_by %q", ErrBadStats, q.GroupBy)
	}
	if !q.Until.After(q.Since) {
		return fmt.Errorf("%w: until must be after since", ErrBadStats)
	}
	width := time.Hour
	if q.Bucket == BucketDay {
		width = 24 * time.Hour
	}
	if q.Until.Sub(q.Since)/width > StatsMaxBuckets {
		return fmt.Errorf("%w: more than %d buckets; narrow the range or use day buckets", ErrBadStats, StatsMaxBuckets)
	}
	return nil
}

// Stats counts events by time bucket and group, with sent volume and
// rates, newest bucket last.
func (db *DB) Stats(ctx context.Context, q StatsQuery) ([]StatsRow, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	if q.Groups <= 0 {
		q.Groups = StatsGroupsDefault
	}
	q.Groups = min(q.Groups, StatsGroupsMax)
	var counted []StatsRow
	var sent []sentVolume
	err := db.transact(ctx, func(tx pgx.Tx) error {
		var err error
		if counted, err = db.countEvents(ctx, tx, q); err != nil {
			return err
		}
		sent, err = db.reportedVolume(ctx, tx, q)
		return err
	})
	if err != nil {
		return nil, err
	}
	return foldStats(q, counted, sent), nil
}

// eventsKeyExpr is the expression a grouping breaks events down by.
func eventsKeyExpr(g StatsGroup) string {
	if g == GroupDomain || g == GroupMailboxProvider {
		return eventDomain
	}
	return statsKeyExpr(g)
}

// statsKeyExpr is the column a grouping breaks reported volume
// (sent_counts) down by.
func statsKeyExpr(g StatsGroup) string {
	return map[StatsGroup]string{GroupNone: "''", GroupDomain: "domain", GroupSource: "source",
		GroupProvider: "provider", GroupReason: "reason", GroupMailboxProvider: "domain"}[g]
}

// sentByGroup reports whether reported volume can be broken down as the
// grouping asks: by domain, provider or the domain's mailbox provider
// (otherwise a bucket has a total).
func sentByGroup(g StatsGroup) bool {
	return g == GroupDomain || g == GroupProvider || g == GroupMailboxProvider
}

// statsArgs are the arguments of the stats queries: bucket, since,
// until, and the tenant when only one is counted ($4).
func statsArgs(q StatsQuery) ([]any, string) {
	args := []any{string(q.Bucket), q.Since, q.Until}
	if q.OnlyTenant {
		return append(args, q.Tenant), "tenant = $4"
	}
	return args, "true"
}

// countEvents counts the events of q by bucket and key: one row per
// bucket and key, with the counters of StatsRow set. By mailbox provider
// it counts by domain first, then sums the domains of each provider.
func (db *DB) countEvents(ctx context.Context, tx pgx.Tx, q StatsQuery) ([]StatsRow, error) {
	args, tenantCond := statsArgs(q)
	query := `
		SELECT date_trunc($1, occurred_at, 'UTC'), ` + eventsKeyExpr(q.GroupBy) + `,
			count(*) FILTER (WHERE type = 'delivery'),
			count(*) FILTER (WHERE type = 'bounce' AND class = 'hard'),
			count(*) FILTER (WHERE type = 'bounce' AND class = 'soft'),
			count(*) FILTER (WHERE type = 'bounce' AND class = 'sender'),
			count(*) FILTER (WHERE type = 'complaint'),
			count(*) FILTER (WHERE type = 'delay'),
			count(*) FILTER (WHERE type = 'auto_reply'),
			count(*) FILTER (WHERE type = 'sent'),
			count(*) FILTER (WHERE unverified)
		FROM events
		WHERE occurred_at >= $2 AND occurred_at < $3 AND ` + tenantCond + `
			AND type IN ('delivery', 'bounce', 'complaint', 'delay', 'auto_reply', 'sent')
		GROUP BY 1, 2`
	if q.GroupBy == GroupMailboxProvider {
		query, args = db.byMailboxProvider(query, 9, args)
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []StatsRow
	var r StatsRow
	_, err = pgx.ForEachRow(rows, []any{&r.BucketStart, &r.Key, &r.Delivered, &r.Hard, &r.Soft, &r.Sender,
		&r.Complaints, &r.Delays, &r.AutoReplies, &r.Accepted, &r.Unverified}, func() error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// sentVolume is reported sent volume in one bucket (and group key).
type sentVolume struct {
	bucket time.Time
	key    string
	n      int64
}

// reportedVolume sums the sent volume reported for q by bucket, and by
// key where the grouping allows (see sentByGroup). Only volume reported
// for the same group is a denominator: by domain (provider) the reports
// that name that domain (provider), by mailbox provider the reports that
// name a domain of that mailbox provider; otherwise the reports that name
// neither, totals of all mail, since a report for one domain counts none
// of the other domains' mail whose events the row counts.
func (db *DB) reportedVolume(ctx context.Context, tx pgx.Tx, q StatsQuery) ([]sentVolume, error) {
	args, tenantCond := statsArgs(q)
	sentKey := "''"
	switch q.GroupBy {
	case GroupDomain, GroupMailboxProvider:
		sentKey, tenantCond = statsKeyExpr(q.GroupBy), tenantCond+` AND domain <> ''`
	case GroupProvider:
		sentKey, tenantCond = statsKeyExpr(q.GroupBy), tenantCond+` AND provider <> ''`
	default:
		tenantCond += ` AND domain = '' AND provider = ''`
	}
	query := `
		SELECT date_trunc($1, hour, 'UTC'), ` + sentKey + `, sum(count)::bigint FROM sent_counts
		WHERE hour >= $2 AND hour < $3 AND ` + tenantCond + ` GROUP BY 1, 2`
	if q.GroupBy == GroupMailboxProvider {
		query, args = db.byMailboxProvider(query, 1, args)
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []sentVolume
	var v sentVolume
	_, err = pgx.ForEachRow(rows, []any{&v.bucket, &v.key, &v.n}, func() error {
		out = append(out, v)
		return nil
	})
	return out, err
}

// foldStats turns counted events and reported volume into the rows Stats
// answers: the biggest q.Groups groups kept and the rest folded into
// StatsOtherKey, sent volume from reports where there are any (else every
// delivery and failure seen), rates, sorted by bucket and key. It reads
// no database.
func foldStats(q StatsQuery, counted []StatsRow, sent []sentVolume) []StatsRow {
	type bk struct {
		b time.Time
		k string
	}
	rows := map[bk]*StatsRow{}
	for _, c := range counted {
		row := c
		row.BucketStart = row.BucketStart.UTC()
		rows[bk{row.BucketStart, row.Key}] = &row
	}
	reported := map[bk]int64{}
	for _, v := range sent {
		reported[bk{v.bucket.UTC(), v.key}] += v.n
	}
	byGroup := sentByGroup(q.GroupBy)
	// Reported volume without event rows still makes a row, unless it is
	// a total that the grouping cannot place.
	if byGroup || q.GroupBy == GroupNone {
		for key := range reported {
			if rows[key] == nil && (key.k != "" || q.GroupBy == GroupNone) {
				rows[key] = &StatsRow{BucketStart: key.b, Key: key.k}
			}
		}
	}
	// Keep the biggest groups; fold the rest.
	if q.GroupBy != GroupNone {
		volume := map[string]int64{}
		for key, r := range rows {
			volume[key.k] += r.Delivered + r.Accepted + r.Hard + r.Soft + r.Sender + r.Complaints + r.Delays + r.AutoReplies + reported[key]
		}
		keys := make([]string, 0, len(volume))
		for k := range volume {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int { return cmp.Or(cmp.Compare(volume[b], volume[a]), strings.Compare(a, b)) })
		if len(keys) > q.Groups {
			keep := map[string]bool{}
			for _, k := range keys[:q.Groups] {
				keep[k] = true
			}
			for key, r := range rows {
				if keep[key.k] {
					continue
				}
				delete(rows, key)
				other := bk{key.b, StatsOtherKey}
				o := rows[other]
				if o == nil {
					o = &StatsRow{BucketStart: key.b, Key: StatsOtherKey}
					rows[other] = o
				}
				o.Delivered += r.Delivered
				o.Accepted += r.Accepted
				o.Hard += r.Hard
				o.Soft += r.Soft
				o.Sender += r.Sender
				o.Complaints += r.Complaints
				o.Delays += r.Delays
				o.AutoReplies += r.AutoReplies
				o.Unverified += r.Unverified
				reported[other] += reported[key]
				delete(reported, key)
			}
		}
	}
	// Bucket totals, for groupings that sent volume cannot be broken down by.
	observedTotal := map[time.Time]int64{}
	reportedTotal := map[time.Time]int64{}
	for key, r := range rows {
		observedTotal[key.b] += r.observed()
	}
	for key, n := range reported {
		reportedTotal[key.b] += n
	}
	out := make([]StatsRow, 0, len(rows))
	for key, r := range rows {
		r.Bounced = r.Hard + r.Soft
		switch {
		case !byGroup && q.GroupBy != GroupNone:
			r.Sent, r.SentBasis = observedTotal[key.b], SentObserved
			if n := reportedTotal[key.b]; n > 0 {
				r.Sent, r.SentBasis = n, SentReported
			}
		case reported[key] > 0:
			r.Sent, r.SentBasis = reported[key], SentReported
		default:
			r.Sent, r.SentBasis = r.observed(), SentObserved
		}
		r.BounceRate, r.ComplaintRate = Rate(r.Bounced, r.Sent), Rate(r.Complaints, r.Sent)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b StatsRow) int {
		return cmp.Or(a.BucketStart.Compare(b.BucketStart), strings.Compare(a.Key, b.Key))
	})
	return out
}

// observed is the volume r saw: deliveries, acceptances (a provider that
// tells of acceptance, not delivery: a message that then fails is counted
// twice) and failures.
func (r *StatsRow) observed() int64 { return r.Delivered + r.Accepted + r.Hard + r.Soft + r.Sender }

// SentCount is sent volume reported for one hour (and domain, provider).
type SentCount struct {
	At       time.Time `json:"at"`
	Count    int64     `json:"count"`
	Domain   string    `json:"domain,omitempty"`
	Provider string    `json:"provider,omitempty"`
}

// RecordSent adds reported sent volume for a tenant ("" for none), by the
// hour of each count. A non-empty reportID makes the report idempotent:
// a report id seen before changes nothing and RecordSent returns false.
func (db *DB) RecordSent(ctx context.Context, tenant, reportID string, counts []SentCount) (bool, error) {
	hours := make([]time.Time, len(counts))
	domains := make([]string, len(counts))
	providers := make([]string, len(counts))
	ns := make([]int64, len(counts))
	for i, c := range counts {
		hours[i] = c.At.UTC().Truncate(time.Hour)
		domains[i], providers[i], ns[i] = strings.ToLower(c.Domain), c.Provider, c.Count
	}
	applied := true
	err := db.transact(ctx, func(tx pgx.Tx) error {
		applied = true
		if reportID != "" {
			tag, err := tx.Exec(ctx, `INSERT INTO sent_reports (tenant, report_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, tenant, reportID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				applied = false
				return nil
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO sent_counts AS c (tenant, hour, domain, provider, count)
			SELECT $1, h, d, p, sum(n) FROM unnest($2::timestamptz[], $3::text[], $4::text[], $5::bigint[]) AS t(h, d, p, n)
			GROUP BY h, d, p
			ON CONFLICT (tenant, hour, domain, provider) DO UPDATE SET count = c.count + EXCLUDED.count`,
			tenant, hours, domains, providers, ns)
		return err
	})
	if err == nil && applied {
		var total int64
		for _, n := range ns {
			total += n
		}
		db.metrics.sent.Add(float64(total))
	}
	return applied, err
}
