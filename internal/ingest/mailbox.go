package ingest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/store"
)

// EnvelopeIngester parses and records one message received as mail. It
// returns store.ErrUnavailable when the database cannot be reached.
type EnvelopeIngester interface {
	IngestEnvelope(ctx context.Context, env Envelope, raw []byte) (store.Outcome, error)
}

var _ EnvelopeIngester = (*Mail)(nil)

// ErrMailboxFailing is wrapped by the error CheckHealth returns for a
// mailbox that has failed for longer than its UnhealthyAfter.
var ErrMailboxFailing = errors.New("ingest: mailbox failing")

// Defaults shared by the mailbox ingesters.
const (
	UnhealthyAfterDefault  = 10 * time.Minute
	MaxMessageBytesDefault = 10 << 20
	BackoffMinDefault      = time.Second
	BackoffMaxDefault      = 5 * time.Minute
)

// State is what a mailbox ingester is doing, exported as the
// bounced_mailbox_connection_state gauge.
type State string

// States of a mailbox ingester.
const (
	StateStandby    State = "standby"    // another replica holds the mailbox lease
	StateConnecting State = "connecting" // dialling, logging in, selecting
	StateProcessing State = "processing" // reading and recording messages
	StateIdle       State = "idle"       // IMAP IDLE, waiting for the server's news
	StatePolling    State = "polling"    // waiting for the next poll
	StateWatching   State = "watching"   // Maildir: waiting for a file
	StateListening  State = "listening"  // SMTP/LMTP: accepting connections
	StateBackoff    State = "backoff"    // failed; waiting before the next try
	StateStopped    State = "stopped"
)

var allStates = []State{StateStandby, StateConnecting, StateProcessing, StateIdle, StatePolling,
	StateWatching, StateListening, StateBackoff, StateStopped}

// Outcome labels of bounced_mailbox_messages_total.
const (
	OutcomeStored    = "stored"    // committed with its events
	OutcomeDuplicate = "duplicate" // the same bytes were stored before
	OutcomeFailed    = "failed"    // not committed (database down); left for a retry
	OutcomeTooLarge  = "too_large" // over the size limit; left where it was
	// OutcomeQuarantined is a message set aside after failing too often
	// (see Quarantine): stored, nothing read from it, acted on.
	OutcomeQuarantined = "quarantined"
)

// Metrics are the mailbox ingesters' Prometheus metrics. One value serves
// every IMAP, Maildir and SMTP/LMTP ingester of a process.
type Metrics struct {
	messages    *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	state       *prometheus.GaugeVec
}

// NewMetrics registers the mailbox metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "mailbox", Name: "messages_total",
			Help: "Messages read from mailboxes and receivers, by mailbox and outcome (stored, duplicate, failed, too_large, quarantined).",
		}, []string{"mailbox", "outcome"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "bounced", Subsystem: "mailbox", Name: "last_success_timestamp_seconds",
			Help: "When a mailbox was last read (or a receiver last committed a message) without error.",
		}, []string{"mailbox"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "bounced", Subsystem: "mailbox", Name: "connection_state",
			Help: "1 for the state each mailbox ingester is in, 0 for the others.",
		}, []string{"mailbox", "state"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.messages, m.lastSuccess, m.state} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// monitor tracks one mailbox's state, metrics and health.
type monitor struct {
	name           string
	metrics        *Metrics
	now            func() time.Time
	unhealthyAfter time.Duration

	mu           sync.Mutex
	state        State
	failingSince time.Time
}

func newMonitor(name string, m *Metrics, now func() time.Time, unhealthyAfter time.Duration) *monitor {
	if m == nil {
		m, _ = NewMetrics(nil)
	}
	if now == nil {
		now = time.Now
	}
	mon := &monitor{name: name, metrics: m, now: now, unhealthyAfter: cmpDur(unhealthyAfter, UnhealthyAfterDefault)}
	for _, s := range allStates {
		m.state.WithLabelValues(name, string(s)).Set(0)
	}
	return mon
}

func (m *monitor) setState(s State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == s {
		return
	}
	if m.state != "" {
		m.metrics.state.WithLabelValues(m.name, string(m.state)).Set(0)
	}
	m.state = s
	m.metrics.state.WithLabelValues(m.name, string(s)).Set(1)
}

// State returns what the ingester is doing now.
func (m *monitor) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

func (m *monitor) count(outcome string) { m.metrics.messages.WithLabelValues(m.name, outcome).Inc() }

func (m *monitor) countOutcome(out store.Outcome) {
	switch {
	case out.Quarantined:
		m.count(OutcomeQuarantined)
	case out.Created:
		m.count(OutcomeStored)
	default:
		m.count(OutcomeDuplicate)
	}
}

// succeeded records a pass without error.
func (m *monitor) succeeded() {
	m.mu.Lock()
	m.failingSince = time.Time{}
	m.mu.Unlock()
	m.metrics.lastSuccess.WithLabelValues(m.name).Set(float64(m.now().UnixNano()) / 1e9)
}

// healthy clears a failure without counting a success (standby).
func (m *monitor) healthy() {
	m.mu.Lock()
	m.failingSince = time.Time{}
	m.mu.Unlock()
}

func (m *monitor) failed() {
	m.mu.Lock()
	if m.failingSince.IsZero() {
		m.failingSince = m.now()
	}
	m.mu.Unlock()
}

// CheckHealth returns an error wrapping ErrMailboxFailing when the
// mailbox has failed without a success for longer than UnhealthyAfter.
func (m *monitor) CheckHealth(context.Context) error {
	m.mu.Lock()
	since := m.failingSince
	m.mu.Unlock()
	if !since.IsZero() && m.now().Sub(since) > m.unhealthyAfter {
		return fmt.Errorf("%w: %q has failed since %s", ErrMailboxFailing, m.name, since.UTC().Format(time.RFC3339))
	}
	return nil
}

// backoff is exponential backoff with jitter: each wait is drawn from
// the upper half of a window that doubles up to max.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(minWait, maxWait time.Duration) *backoff {
	b := &backoff{min: cmpDur(minWait, BackoffMinDefault), max: cmpDur(maxWait, BackoffMaxDefault)}
	b.max = max(b.max, b.min)
	return b
}

func (b *backoff) next() time.Duration {
	b.cur = min(max(b.cur*2, b.min), b.max)
	half := b.cur / 2
	return half + rand.N(half+1)
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx is done, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func cmpDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
