package store

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are counted after commit, never inside a transaction that may
// still roll back.
type metrics struct {
	events            *prometheus.CounterVec
	suppressionsAdded *prometheus.CounterVec
	suppressionsDel   *prometheus.CounterVec
	cacheHits         prometheus.Counter
	cacheMisses       prometheus.Counter
	sent              prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, pool *pgxpool.Pool, db *DB) (*metrics, error) {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Name: "events_total",
			Help: "Events recorded, by type and class.",
		}, []string{"type", "class"}),
		suppressionsAdded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Name: "suppressions_added_total",
			Help: "Addresses newly put on a suppression list, by reason.",
		}, []string{"reason"}),
		suppressionsDel: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Name: "suppressions_removed_total",
			Help: "Addresses taken off a suppression list, by reason they had been on it.",
		}, []string{"reason"}),
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
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.events, m.suppressionsAdded, m.suppressionsDel, m.cacheHits, m.cacheMisses, m.sent,
		poolCollector{pool}, &activeCollector{db: db}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
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
