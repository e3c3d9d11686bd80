package store

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrClosed means the group committer was closed before the input could be
// queued.
var ErrClosed = errors.New("store: group committer closed")

// Defaults for GroupCommitOptions.
const (
	GroupMaxInputsDefault = 256
	GroupMaxEventsDefault = 5000
	GroupMaxWaitDefault   = 2 * time.Millisecond
	GroupWorkersDefault   = 2
	GroupTimeoutDefault   = 5 * time.Second
)

// GroupCommitOptions tune a GroupCommitter. Zero fields take the defaults.
type GroupCommitOptions struct {
	// MaxInputs and MaxEvents bound one batch.
	MaxInputs int
	MaxEvents int
	// MaxWait is how long a batch that is not full waits for more inputs
	// once a worker holds its first one.
	MaxWait time.Duration
	// Workers is how many batches commit at once.
	Workers int
	// Timeout bounds one batch's transaction, so a stalled database turns
	// into ErrUnavailable instead of requests that hang.
	Timeout    time.Duration
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// GroupCommitter records inputs from many concurrent callers in shared
// transactions, one commit (one WAL flush) for a whole batch. Each caller
// gets its own Outcome once the batch holding its input has committed, and
// nothing before: an acknowledgement is always durable.
type GroupCommitter struct {
	db      *DB
	opts    GroupCommitOptions
	queue   chan *pending
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	metrics groupMetrics
}

type pending struct {
	ctx    context.Context
	in     Input
	queued time.Time
	done   chan BatchResult
}

type groupMetrics struct {
	inputs   prometheus.Histogram
	events   prometheus.Histogram
	wait     prometheus.Histogram
	duration prometheus.Histogram
}

// NewGroupCommitter starts the workers; call Close to stop them.
func NewGroupCommitter(db *DB, opts GroupCommitOptions) (*GroupCommitter, error) {
	opts.MaxInputs = max(opts.MaxInputs, 0)
	if opts.MaxInputs == 0 {
		opts.MaxInputs = GroupMaxInputsDefault
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = GroupMaxEventsDefault
	}
	if opts.MaxWait < 0 {
		opts.MaxWait = 0
	} else if opts.MaxWait == 0 {
		opts.MaxWait = GroupMaxWaitDefault
	}
	if opts.Workers <= 0 {
		opts.Workers = GroupWorkersDefault
	}
	if opts.Timeout <= 0 {
		opts.Timeout = GroupTimeoutDefault
	}
	if opts.Logger == nil {
		opts.Logger = db.logger
	}
	g := &GroupCommitter{
		db:    db,
		opts:  opts,
		queue: make(chan *pending, opts.MaxInputs*opts.Workers),
		stop:  make(chan struct{}),
		metrics: groupMetrics{
			inputs: prometheus.NewHistogram(prometheus.HistogramOpts{
				Namespace: "bounced", Subsystem: "store", Name: "batch_inputs",
				Help:    "Inputs committed together in one group-commit transaction.",
				Buckets: prometheus.ExponentialBuckets(1, 2, 10),
			}),
			events: prometheus.NewHistogram(prometheus.HistogramOpts{
				Namespace: "bounced", Subsystem: "store", Name: "batch_events",
				Help:    "Events in one group-commit transaction.",
				Buckets: prometheus.ExponentialBuckets(1, 4, 8),
			}),
			wait: prometheus.NewHistogram(prometheus.HistogramOpts{
				Namespace: "bounced", Subsystem: "store", Name: "batch_wait_seconds",
				Help:    "Time an input waited in the queue before its batch began.",
				Buckets: []float64{.0001, .0005, .001, .002, .005, .01, .025, .05, .1, .5, 1},
			}),
			duration: prometheus.NewHistogram(prometheus.HistogramOpts{
				Namespace: "bounced", Subsystem: "store", Name: "batch_duration_seconds",
				Help:    "Time to record and commit one batch.",
				Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 5},
			}),
		},
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{g.metrics.inputs, g.metrics.events, g.metrics.wait, g.metrics.duration} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	for range opts.Workers {
		g.wg.Add(1)
		go g.work()
	}
	return g, nil
}

// Record queues in for the next batch and waits until that batch has
// committed or failed. It returns ErrUnavailable when the database is
// down, ErrInvalidInput for an input the schema refuses, ErrClosed after
// Close, and ctx's error when ctx ends first (the input may still commit;
// recording it again is a no-op).
func (g *GroupCommitter) Record(ctx context.Context, in Input) (Outcome, error) {
	p := &pending{ctx: ctx, in: in, queued: time.Now(), done: make(chan BatchResult, 1)}
	select {
	case <-g.stop:
		return Outcome{}, ErrClosed
	default:
	}
	select {
	case g.queue <- p:
	case <-g.stop:
		return Outcome{}, ErrClosed
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	select {
	case r := <-p.done:
		return r.Outcome, r.Err
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

// Close stops taking inputs, commits what is queued and stops the workers.
func (g *GroupCommitter) Close() {
	g.once.Do(func() { close(g.stop) })
	g.wg.Wait()
}

func (g *GroupCommitter) work() {
	defer g.wg.Done()
	for {
		var first *pending
		select {
		case first = <-g.queue:
		case <-g.stop:
			g.drain()
			return
		}
		g.commit(g.collect(first))
	}
}

// collect gathers inputs after first until the batch is full or MaxWait
// has passed. Under load the queue is never empty and batches fill at
// once; when idle a lone input waits at most MaxWait.
func (g *GroupCommitter) collect(first *pending) []*pending {
	batch := []*pending{first}
	events := len(first.in.Events)
	var timeout <-chan time.Time
	for len(batch) < g.opts.MaxInputs && events < g.opts.MaxEvents {
		select {
		case p := <-g.queue:
			batch = append(batch, p)
			events += len(p.in.Events)
			continue
		default:
		}
		if timeout == nil {
			t := time.NewTimer(g.opts.MaxWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case p := <-g.queue:
			batch = append(batch, p)
			events += len(p.in.Events)
		case <-timeout:
			return batch
		case <-g.stop:
			return batch
		}
	}
	return batch
}

// drain commits whatever was queued before Close.
func (g *GroupCommitter) drain() {
	for {
		select {
		case p := <-g.queue:
			g.commit(g.collect(p))
		default:
			return
		}
	}
}

func (g *GroupCommitter) commit(batch []*pending) {
	start := time.Now()
	live := batch[:0]
	events := 0
	for _, p := range batch {
		g.metrics.wait.Observe(start.Sub(p.queued).Seconds())
		if p.ctx.Err() != nil {
			// Nobody waits for it, and it was never acknowledged.
			p.done <- BatchResult{Err: p.ctx.Err()}
			continue
		}
		live = append(live, p)
		events += len(p.in.Events)
	}
	if len(live) == 0 {
		return
	}
	ins := make([]Input, len(live))
	for i, p := range live {
		ins[i] = p.in
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.Timeout)
	results := g.db.RecordBatch(ctx, ins)
	cancel()
	for i, p := range live {
		r := results[i]
		if errors.Is(r.Err, context.DeadlineExceeded) {
			r.Err = errors.Join(ErrUnavailable, r.Err)
		}
		p.done <- r
	}
	g.metrics.inputs.Observe(float64(len(live)))
	g.metrics.events.Observe(float64(events))
	g.metrics.duration.Observe(time.Since(start).Seconds())
}
