package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bounced/bounced/internal/store"
)

const statsText = `Prints what GET /v1/stats answers, as a table: per hour or day (UTC),
optionally per domain, provider, source or reason, the messages sent
(reported on POST /v1/sent for the row's own group, else every delivery,
acceptance and failure of the group seen),
deliveries, bounces (hard, soft, sender-side), complaints, delays and the
bounce and complaint rates ("-" where the sent count cannot be their
denominator). It reads the database directly; beside a
running bounced serve on the private PostgreSQL, it uses that server.
`

func stats(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var bucket, groupBy, since, until, tenant string
	var groups int
	h := help{name: "stats", text: statsText, settings: true, flags: func(fs *flag.FlagSet) {
		fs.StringVar(&bucket, "bucket", "hour", "hour or day")
		fs.StringVar(&groupBy, "group-by", "none", "none, domain, provider, source or reason")
		fs.IntVar(&groups, "groups", store.StatsGroupsDefault, "the biggest groups shown; the rest are summed as (other)")
		fs.StringVar(&since, "since", "", "start: RFC 3339 time, or a duration back from --until such as 48h or 7d (default 24h, or 30d by day)")
		fs.StringVar(&until, "until", "", "end (RFC 3339; default now)")
		fs.StringVar(&tenant, "tenant", "", "only this tenant's events and sent volume (default: every tenant)")
	}}
	cfg, rest, done, err := loadCommand(h, args, getenv, stdout)
	if done {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("stats: unexpected argument %q", rest[0])}
	}
	q := store.StatsQuery{Bucket: store.StatsBucket(bucket), GroupBy: store.StatsGroup(groupBy), Groups: groups}
	if groupBy == "none" {
		q.GroupBy = store.GroupNone
	}
	if tenant != "" {
		if !store.ValidTenant(tenant) {
			return usageError{fmt.Sprintf("stats: --tenant %q is not a tenant name", tenant)}
		}
		q.Tenant, q.OnlyTenant = tenant, true
	}
	if q.Until, q.Since, err = statsRange(time.Now(), q.Bucket, since, until); err != nil {
		return usageError{"stats: " + err.Error()}
	}
	if q.Bucket != store.BucketHour && q.Bucket != store.BucketDay {
		return usageError{fmt.Sprintf("stats: --bucket %q is not hour or day", bucket)}
	}
	if !q.GroupBy.Valid() {
		return usageError{fmt.Sprintf("stats: --group-by %q is not none, domain, provider, source or reason", groupBy)}
	}
	if groups < 1 || groups > store.StatsGroupsMax {
		return usageError{fmt.Sprintf("stats: --groups must be from 1 to %d", store.StatsGroupsMax)}
	}
	logger := newLogger(cfg, stderr)
	db, closeDB, err := openDBShared(ctx, cfg, logger, nil, true)
	if err != nil {
		return err
	}
	defer closeDB()
	rows, err := db.Stats(ctx, q)
	if err != nil {
		if errors.Is(err, store.ErrBadStats) {
			return usageError{err.Error()}
		}
		return err
	}
	printStats(stdout, q, rows)
	return nil
}

// statsRange resolves --since and --until as the API does.
func statsRange(now time.Time, bucket store.StatsBucket, since, until string) (u, s time.Time, err error) {
	u = now.UTC()
	if until != "" {
		if u, err = time.Parse(time.RFC3339, until); err != nil {
			return u, s, fmt.Errorf("--until %q is not an RFC 3339 time", until)
		}
	}
	back := 24 * time.Hour
	if bucket == store.BucketDay {
		back = 30 * 24 * time.Hour
	}
	switch {
	case since == "":
		s = u.Add(-back)
	case strings.HasSuffix(since, "d"):
		days, err := strconv.Atoi(strings.TrimSuffix(since, "d"))
		if err != nil || days <= 0 {
			return u, s, fmt.Errorf("--since %q is not a number of days such as 7d", since)
		}
		s = u.Add(-time.Duration(days) * 24 * time.Hour)
	default:
		if d, err := time.ParseDuration(since); err == nil && d > 0 {
			s = u.Add(-d)
		} else if s, err = time.Parse(time.RFC3339, since); err != nil {
			return u, s, fmt.Errorf("--since %q is neither an RFC 3339 time nor a duration such as 48h or 7d", since)
		}
	}
	if !u.After(s) {
		return u, s, errors.New("--until must be after --since")
	}
	return u, s, nil
}

// printStats writes rows as a table, oldest bucket first, with totals
// when the rows are not grouped.
func printStats(w io.Writer, q store.StatsQuery, rows []store.StatsRow) {
	layout := "2006-01-02 15:04"
	if q.Bucket == store.BucketDay {
		layout = time.DateOnly
	}
	scope := "every tenant"
	if q.OnlyTenant {
		scope = "tenant " + q.Tenant
		if q.Tenant == "" {
			scope = "no tenant"
		}
	}
	fmt.Fprintf(w, "%s to %s UTC, by %s, %s\n", q.Since.UTC().Format(layout), q.Until.UTC().Format(layout), q.Bucket, scope)
	if len(rows) == 0 {
		fmt.Fprintln(w, "no events in this range")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	key := ""
	if q.GroupBy != store.GroupNone {
		key = string(q.GroupBy) + "\t"
	}
	fmt.Fprintf(tw, "%s\t%ssent\tbasis\tdelivered\tbounced\thard\tsoft\tsender\tcomplaints\tdelays\tbounce rate\tcomplaint rate\t\n", q.Bucket, key)
	var total store.StatsRow
	for _, r := range rows {
		k := ""
		if q.GroupBy != store.GroupNone {
			k = cmp.Or(r.Key, "-") + "\t"
		}
		fmt.Fprintf(tw, "%s\t%s%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", r.BucketStart.UTC().Format(layout), k,
			r.Sent, r.SentBasis, r.Delivered, r.Bounced, r.Hard, r.Soft, r.Sender, r.Complaints, r.Delays,
			percent(r.BounceRate), percent(r.ComplaintRate))
		total.Sent += r.Sent
		total.Delivered += r.Delivered
		total.Bounced += r.Bounced
		total.Hard += r.Hard
		total.Soft += r.Soft
		total.Sender += r.Sender
		total.Complaints += r.Complaints
		total.Delays += r.Delays
	}
	if q.GroupBy == store.GroupNone && len(rows) > 1 {
		fmt.Fprintf(tw, "total\t%d\t\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t\n", total.Sent, total.Delivered, total.Bounced,
			total.Hard, total.Soft, total.Sender, total.Complaints, total.Delays,
			percent(store.Rate(total.Bounced, total.Sent)), percent(store.Rate(total.Complaints, total.Sent)))
	}
	tw.Flush()
}

// percent prints a rate, or "-" where there is none (no denominator).
func percent(f *float64) string {
	if f == nil {
		return "-"
	}
	return strconv.FormatFloat(*f*100, 'f', 2, 64) + "%"
}
