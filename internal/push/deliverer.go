package push

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/store"
)

// Store is what a Deliverer reads and writes. ClaimDeliveries and
// SettleDelivery return store.ErrUnavailable when the database is down.
type Store interface {
	ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]store.DeliveryJob, error)
	SettleDelivery(ctx context.Context, job store.DeliveryJob, o store.DeliveryOutcome) error
	DeliveriesWritten() <-chan struct{}
	DeliveryCounts(ctx context.Context) (pending, dead int64, err error)
}

var _ Store = (*store.DB)(nil)

// Defaults for Options.
const (
	MaxAttemptsDefault  = 15
	WorkersDefault      = 4
	BackoffBaseDefault  = 5 * time.Second
	BackoffMaxDefault   = 6 * time.Hour
	PollIntervalDefault = time.Second
)

// Options configure a Deliverer; zero fields take the defaults.
type Options struct {
	// Client sends the deliveries; NewClient(Timeout, AllowPrivate) when
	// nil.
	Client       *http.Client
	Timeout      time.Duration
	AllowPrivate bool
	// MaxAttempts is how many attempts a delivery gets before it is dead.
	// With the default backoff (5 s doubling up to 6 h) 15 attempts span
	// about a day.
	MaxAttempts int
	// Workers is how many deliveries this process sends at once.
	Workers int
	// BackoffBase is the wait after the first failed attempt; each next
	// wait doubles, up to BackoffMax, with ±20 % jitter.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// PollInterval is how often due deliveries are looked for besides the
	// notifications of new ones (retries come due without one).
	PollInterval time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	NowFunc      func() time.Time
}

// Deliverer sends the deliveries of outbound subscriptions. Every replica
// may run one: deliveries are claimed in the database.
type Deliverer struct {
	store   Store
	opts    Options
	client  *http.Client
	logger  *slog.Logger
	now     func() time.Time
	metrics deliveryMetrics
}

type deliveryMetrics struct {
	attempts *prometheus.CounterVec
	dead     prometheus.Counter
	duration prometheus.Histogram
}

// Attempt outcomes, the label of bounced_outbound_attempts_total.
const (
	outcomeDelivered   = "delivered"   // a 2xx answer
	outcomeHTTPError   = "http_error"  // any other answer
	outcomeUnreachable = "unreachable" // no answer: connection, TLS, timeout
	outcomeRefused     = "refused"     // a destination deliveries may not go to
)

// New returns a Deliverer; call Run.
func New(st Store, opts Options) (*Deliverer, error) {
	opts.MaxAttempts = cmp.Or(max(opts.MaxAttempts, 0), MaxAttemptsDefault)
	opts.Workers = cmp.Or(max(opts.Workers, 0), WorkersDefault)
	opts.BackoffBase = cmp.Or(max(opts.BackoffBase, 0), BackoffBaseDefault)
	opts.BackoffMax = cmp.Or(max(opts.BackoffMax, 0), BackoffMaxDefault)
	opts.PollInterval = cmp.Or(max(opts.PollInterval, 0), PollIntervalDefault)
	opts.Timeout = cmp.Or(max(opts.Timeout, 0), TimeoutDefault)
	d := &Deliverer{store: st, opts: opts, client: opts.Client, logger: opts.Logger, now: opts.NowFunc}
	if d.client == nil {
		d.client = NewClient(ClientOptions{Timeout: opts.Timeout, AllowPrivate: opts.AllowPrivate})
	}
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	d.logger = d.logger.With("component", "push")
	if d.now == nil {
		d.now = time.Now
	}
	d.metrics = deliveryMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "outbound", Name: "attempts_total",
			Help: "Attempts to deliver a change to an outbound webhook subscription, by outcome: delivered (2xx), http_error (any other answer), unreachable (no answer), refused (a destination not allowed).",
		}, []string{"outcome"}),
		dead: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "outbound", Name: "dead_total",
			Help: "Deliveries given up after their last attempt (or refused by a 410 answer); replay them over the API.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "bounced", Subsystem: "outbound", Name: "attempt_duration_seconds",
			Help:    "Time of one delivery attempt, until the receiver's answer was read.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	for _, o := range []string{outcomeDelivered, outcomeHTTPError, outcomeUnreachable, outcomeRefused} {
		d.metrics.attempts.WithLabelValues(o)
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{d.metrics.attempts, d.metrics.dead, d.metrics.duration, &backlogCollector{st: st}} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// lease is how long a claimed delivery is held: past it, another
// deliverer may claim it again (this one died).
func (d *Deliverer) lease() time.Duration { return 2*d.opts.Timeout + 30*time.Second }

// Run sends due deliveries until ctx ends, then waits for the attempts in
// flight (each bounded by the timeout).
func (d *Deliverer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	free := make(chan struct{}, d.opts.Workers)
	for range d.opts.Workers {
		free <- struct{}{}
	}
	backoff := time.Second
	for ctx.Err() == nil {
		// Take the workers that are free; wait for one when none is.
		n := 0
	take:
		for n < d.opts.Workers {
			select {
			case <-free:
				n++
			default:
				break take
			}
		}
		if n == 0 {
			select {
			case <-free:
				n = 1
			case <-ctx.Done():
				return nil
			}
		}
		wake := d.store.DeliveriesWritten()
		jobs, err := d.store.ClaimDeliveries(ctx, n, d.lease())
		if err != nil {
			for range n {
				free <- struct{}{}
			}
			if ctx.Err() != nil {
				return nil
			}
			d.logger.WarnContext(ctx, "claiming deliveries failed; will retry", "error", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
		for _, job := range jobs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { free <- struct{}{} }()
				d.deliver(context.WithoutCancel(ctx), job)
			}()
		}
		for range n - len(jobs) {
			free <- struct{}{}
		}
		if len(jobs) == n {
			continue // maybe more are due
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-time.After(d.opts.PollInterval):
		}
	}
	return nil
}

// payload is what a delivery's body holds (Standard Webhooks' suggested
// shape): the change's type, when it happened, and the change.
type payload struct {
	Type      store.ChangeType `json:"type"`
	Timestamp time.Time        `json:"timestamp"`
	Data      *store.Change    `json:"data"`
}

// Body is the JSON body delivering c: the body of a webhook and the data
// of a stream event.
func Body(c *store.Change) []byte {
	b, _ := json.Marshal(payload{Type: c.Type, Timestamp: c.OccurredAt.UTC(), Data: c})
	return b
}

// MessageID is a change's webhook-id: its id, the same on every attempt
// and replay.
func MessageID(c *store.Change) string { return strconv.FormatInt(c.ID, 10) }

// deliver makes one attempt of job and settles it.
func (d *Deliverer) deliver(ctx context.Context, job store.DeliveryJob) {
	o := d.attempt(ctx, job)
	log := d.logger.With("subscription", job.SubscriptionID, "delivery", job.ID, "attempt", job.Attempt)
	switch o.State {
	case store.DeliveryDead:
		d.metrics.dead.Inc()
		log.WarnContext(ctx, "delivery given up", "status", o.Status, "error", o.Error)
	case store.DeliveryPending:
		log.DebugContext(ctx, "delivery failed; will retry", "status", o.Status, "error", o.Error, "next_attempt_at", o.NextAttemptAt)
	}
	if o.Disable != "" {
		log.InfoContext(ctx, "subscription turned off", "why", o.Disable)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := d.store.SettleDelivery(sctx, job, o); err != nil {
		// The lease runs out and the delivery is sent again: at least once.
		log.WarnContext(ctx, "recording a delivery attempt failed; it will be sent again", "error", err)
	}
}

// attempt sends job once and says how it went.
func (d *Deliverer) attempt(ctx context.Context, job store.DeliveryJob) store.DeliveryOutcome {
	if job.Change == nil {
		return store.DeliveryOutcome{State: store.DeliveryDead, Error: "the change is no longer kept (BOUNCED_CHANGES_RETENTION)"}
	}
	key, err := SecretKey(job.Secret)
	if err != nil {
		return d.failed(job, 0, "the subscription's secret is not usable: "+err.Error(), nil)
	}
	body := Body(job.Change)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.URL, bytes.NewReader(body))
	if err != nil {
		return d.failed(job, 0, "the subscription's URL is not usable", nil)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "bounced")
	Sign(req.Header, key, MessageID(job.Change), d.now(), body)
	start := time.Now()
	resp, err := d.client.Do(req)
	if err != nil {
		d.metrics.duration.Observe(time.Since(start).Seconds())
		outcome := outcomeUnreachable
		if errors.Is(err, ErrForbiddenDestination) {
			outcome = outcomeRefused
		}
		d.metrics.attempts.WithLabelValues(outcome).Inc()
		return d.failed(job, 0, attemptError(ctx, err), nil)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, ResponseReadMax))
	d.metrics.duration.Observe(time.Since(start).Seconds())
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		d.metrics.attempts.WithLabelValues(outcomeDelivered).Inc()
		return store.DeliveryOutcome{Status: resp.StatusCode, State: store.DeliveryDelivered, NextAttemptAt: d.now()}
	}
	d.metrics.attempts.WithLabelValues(outcomeHTTPError).Inc()
	msg := resp.Status + answerExcerpt(head)
	if resp.StatusCode == http.StatusGone {
		// Standard Webhooks: the receiver wants no more deliveries.
		return store.DeliveryOutcome{Status: resp.StatusCode, Error: msg, State: store.DeliveryDead, NextAttemptAt: d.now(),
			Disable: "the receiver answered 410 Gone"}
	}
	return d.failed(job, resp.StatusCode, msg, resp.Header)
}

// failed is the outcome of a failed attempt: retried after the backoff
// (or the receiver's Retry-After, if longer), dead after the last attempt.
func (d *Deliverer) failed(job store.DeliveryJob, status int, msg string, h http.Header) store.DeliveryOutcome {
	now := d.now()
	if job.Attempt >= d.opts.MaxAttempts {
		return store.DeliveryOutcome{Status: status, Error: msg, State: store.DeliveryDead, NextAttemptAt: now}
	}
	wait := Backoff(job.Attempt, d.opts.BackoffBase, d.opts.BackoffMax)
	if h != nil {
		if ra := retryAfter(h.Get("Retry-After"), now); ra > wait {
			wait = min(ra, d.opts.BackoffMax)
		}
	}
	return store.DeliveryOutcome{Status: status, Error: msg, State: store.DeliveryPending, NextAttemptAt: now.Add(wait)}
}

// Backoff is the wait after failed attempt n (from 1): base doubled n-1
// times, at most max, within ±20 % (jitter, so receivers that failed
// together are not all tried again at once).
func Backoff(n int, base, maxWait time.Duration) time.Duration {
	wait := base
	for i := 1; i < n && wait < maxWait; i++ {
		wait *= 2
	}
	wait = min(wait, maxWait)
	return time.Duration(float64(wait) * (0.8 + 0.4*rand.Float64()))
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now)
	}
	return 0
}

// answerExcerpt is the start of a receiver's answer, as one line of
// printable text, for the delivery's last error.
func answerExcerpt(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(string(b), ""))
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200]
		for len(s) > 0 && !utf8Start(s[len(s)-1]) {
			s = s[:len(s)-1]
		}
		s = strings.ToValidUTF8(s, "") + "…"
	}
	return ": " + s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// backlogCollector reports the deliveries pending and dead at scrape time
// (one count a scrape, reused for backlogTTL).
type backlogCollector struct {
	st            Store
	mu            sync.Mutex
	at            time.Time
	pending, dead int64
}

const backlogTTL = 15 * time.Second

var backlogDesc = prometheus.NewDesc("bounced_outbound_deliveries",
	"Deliveries to outbound webhook subscriptions by state: pending (waiting for an attempt) or dead (given up).", []string{"state"}, nil)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc }

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > backlogTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p, d, err := c.st.DeliveryCounts(ctx)
		cancel()
		if err == nil {
			c.pending, c.dead, c.at = p, d, time.Now()
		}
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(c.pending), "pending")
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(c.dead), "dead")
}
