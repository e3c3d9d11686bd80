package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// Recorder stores an input with its events in one transaction.
// It returns store.ErrUnavailable when the database cannot be reached.
type Recorder interface {
	Record(ctx context.Context, in store.Input) (store.Outcome, error)
}

var _ Recorder = (*store.DB)(nil)

// Mail ingests raw bounce messages.
type Mail struct {
	rec      Recorder
	logger   *slog.Logger
	now      func() time.Time
	received *prometheus.CounterVec
	parsed   *prometheus.CounterVec
	parseDur prometheus.Histogram
}

// NewMail returns a mail ingester writing to rec.
func NewMail(rec Recorder, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Mail, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	m := &Mail{
		rec:    rec,
		logger: logger.With("component", "ingest.mail"),
		now:    now,
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Name: "messages_received_total",
			Help: "Raw inputs committed, by source (duplicates included).",
		}, []string{"source"}),
		parsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "parse", Name: "messages_total",
			Help: "Messages parsed, by outcome (kind, or error).",
		}, []string{"outcome"}),
		parseDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "bounced", Subsystem: "parse", Name: "duration_seconds",
			Help:    "Time to parse one message.",
			Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1},
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.received, m.parsed, m.parseDur} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Ingest parses raw and records it. An unreadable message is still stored
// (ParseStatus failed) and its id returned; only a store error fails.
func (m *Mail) Ingest(ctx context.Context, source, provider string, raw []byte) (store.Outcome, error) {
	start := time.Now()
	rep, perr := parse.Parse(raw)
	m.parseDur.Observe(time.Since(start).Seconds())
	in := store.Input{
		Source: source, Provider: provider, ContentType: "message/rfc822", Raw: raw,
		Status: store.ParseParsed, Kind: string(rep.Kind), Result: rep,
	}
	if perr != nil {
		in.Status, in.Error, in.Result = store.ParseFailed, perr.Error(), nil
		if errors.Is(perr, parse.ErrTooLarge) || errors.Is(perr, parse.ErrEmpty) || len(rep.Recipients) == 0 {
			in.Kind = ""
		} else {
			in.Result = rep // partial, still useful
		}
		m.parsed.WithLabelValues("error").Inc()
	} else {
		m.parsed.WithLabelValues(string(rep.Kind)).Inc()
		in.Events = store.EventsFromReport(rep, m.now())
	}
	out, err := m.rec.Record(ctx, in)
	if err != nil {
		return store.Outcome{}, err
	}
	m.received.WithLabelValues(source).Inc()
	return out, nil
}
