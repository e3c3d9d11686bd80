package store

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/parse"
)

// metrics are counted after commit, never inside a transaction that may
// still roll back. Labels hold only bounded values: enums, configured
// names and scope kinds, never an address, a tenant or a scope name.
type metrics struct {
	events            *prometheus.CounterVec
	suppressionsAdded *prometheus.CounterVec
	suppressionsDel   *prometheus.CounterVec
	cacheHits         prometheus.Counter
	cacheMisses       prometheus.Counter
	sent              prometheus.Counter
	maintained        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, pool *pgxpool.Pool, db *DB) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Name: "events_total",
			Help: "Events recorded from reports and webhooks, by type, class, reason, source, provider (the ESP or configured mailbox) and mailbox_provider (the recipient's: google, microsoft, yahoo..., other, unknown).",
		}, []string{"type", "class", "reason", "source", "provider", "mailbox_provider"}),
		suppressionsAdded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Name: "suppressions_added_total",
			Help: "Addresses newly put on a suppression list, by reason and scope kind (global, tenant, list, stream, other).",
		}, []string{"reason", "scope_kind"}),
		suppressionsDel: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Name: "suppressions_removed_total",
			Help: "Addresses taken off a suppression list (deleted or expired), by the reason they had been on it and scope kind.",
		}, []string{"reason", "scope_kind"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "check_cache", Name: "hits_total",
			Help: "Single checks answered from the in-process cache.",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "bounced", Name: "sent_reported_total",
			Help: "Messages senders reported as sent (POST /v1/sent), for bounce rates against bounced_events_total.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "check_cache", Name: "misses_total",
			Help: "Single checks that read the database while the cache was on.",
		}),
		maintained: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "bounced", Subsystem: "store", Name: "maintenance_last_success_timestamp_seconds",
			Help: "When this process last made the events partitions ahead and applied the retention.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "bounced", Subsystem: "db", Name: "up",
		Help: "1 when PostgreSQL answered a ping at scrape time (within 3s), else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		if pool.Ping(ctx) != nil {
			return 0
		}
		return 1
	})
	for _, c := range []prometheus.Collector{m.events, m.suppressionsAdded, m.suppressionsDel, m.cacheHits, m.cacheMisses, m.sent,
		m.maintained, up, poolCollector{pool}, &activeCollector{db: db}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// knownSources are the input sources a label may name; any other is
// counted as "other".
var knownSources = map[string]bool{"http": true, "webhook": true, "imap": true, "maildir": true, "mbox": true,
	"smtp": true, "lmtp": true, "api": true, "import": true, "system": true}

func sourceLabel(s string) string {
	if knownSources[s] {
		return s
	}
	return "other"
}

func reasonLabel(r parse.Reason) string {
	if r.Valid() || ValidSuppressionReason(r) {
		return string(r)
	}
	return string(parse.ReasonOther)
}

// providerLabel keeps provider names, which come from configuration (ESP
// routes, mailbox names and paths), within a sane length.
func providerLabel(p string) string {
	if len(p) > 128 {
		return "other"
	}
	return p
}

// countEvent counts ev; mailboxProvider is one of mailboxprovider.Known.
func (m *metrics) countEvent(source, provider, mailboxProvider string, ev parse.Event) {
	m.events.WithLabelValues(string(ev.Type), string(ev.Class), reasonLabel(ev.Reason), sourceLabel(source),
		providerLabel(provider), mailboxProvider).Inc()
}

func (m *metrics) countAdded(reason, scope string, n int) {
	m.suppressionsAdded.WithLabelValues(reasonLabel(parse.Reason(reason)), string(KindOf(scope))).Add(float64(n))
}

func (m *metrics) countRemoved(reason, scope string, n int) {
	m.suppressionsDel.WithLabelValues(reasonLabel(parse.Reason(reason)), string(KindOf(scope))).Add(float64(n))
}

// poolCollector reports pgxpool statistics at scrape time.
type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolAcquired = prometheus.NewDesc("bounced_db_pool_acquired_conns", "Connections in use.", nil, nil)
	poolIdle     = prometheus.NewDesc("bounced_db_pool_idle_conns", "Idle connections.", nil, nil)
	poolTotal    = prometheus.NewDesc("bounced_db_pool_total_conns", "Open connections.", nil, nil)
	poolMax      = prometheus.NewDesc("bounced_db_pool_max_conns", "Most connections the pool opens.", nil, nil)
	poolWaits    = prometheus.NewDesc("bounced_db_pool_acquire_waits_total", "Acquires that had to wait for a connection.", nil, nil)
	poolWaitSecs = prometheus.NewDesc("bounced_db_pool_acquire_wait_seconds_total", "Time spent waiting for a connection.", nil, nil)
)

func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolTotal, poolMax, poolWaits, poolWaitSecs} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolAcquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWaitSecs, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
}

// activeCollector reports active suppressions by reason and scope kind.
// Counting a large list takes a while, so a scrape reuses a count younger
// than activeTTL.
type activeCollector struct {
	db     *DB
	mu     sync.Mutex
	at     time.Time
	counts []activeCount
}

type activeCount struct {
	reason, kind string
	n            float64
}

const activeTTL = 30 * time.Second

var activeDesc = prometheus.NewDesc("bounced_suppressions_active",
	"Suppressions in force, by reason and scope kind (global, tenant, list, stream, other).", []string{"reason", "scope_kind"}, nil)

func (c *activeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- activeDesc }

func (c *activeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > activeTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		counts, err := c.db.countActive(ctx)
		cancel()
		if err != nil {
			c.db.logger.Warn("counting active suppressions for metrics", "error", err)
		} else {
			c.counts, c.at = counts, time.Now()
		}
	}
	for _, a := range c.counts {
		ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, a.n, a.reason, a.kind)
	}
}
