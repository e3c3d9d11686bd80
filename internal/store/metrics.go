package store

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are counted after commit, never inside a transaction that may
// still roll back.
type metrics struct {
	events            *prometheus.CounterVec
	suppressionsAdded *prometheus.CounterVec
	suppressionsDel   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) (*metrics, error) {
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
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.events, m.suppressionsAdded, m.suppressionsDel, poolCollector{pool}} {
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
