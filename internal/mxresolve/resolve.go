// Package mxresolve finds the mailbox provider of a recipient domain: from
// internal/mailboxprovider's table of well-known domains when it is one,
// else from the hosts of its MX records (RFC 5321 section 5.1), looked up
// with a timeout, at most a few at a time, and kept in a bounded cache
// (answers for a day, failures for minutes).
//
// Ingest never waits for a lookup: Peek answers from the table or the
// cache, or queues the domain for Run's workers and answers Unknown.
package mxresolve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/bounced/bounced/internal/mailboxprovider"
)

// Defaults for Options.
const (
	TimeoutDefault     = 2 * time.Second
	CacheSizeDefault   = 100_000
	TTLDefault         = 24 * time.Hour
	NegativeTTLDefault = 5 * time.Minute
	ConcurrencyDefault = 4
	QueueDefault       = 10_000
)

// Options configure New. Zero values take the defaults.
type Options struct {
	// Resolver asks DNS (net.DefaultResolver when nil).
	Resolver *net.Resolver
	// Timeout bounds each lookup.
	Timeout time.Duration
	// CacheSize caps the domains remembered; the least recently used go.
	CacheSize int
	// TTL is how long a lookup's answer is kept, NegativeTTL a failed
	// lookup's (a timeout, SERVFAIL).
	TTL, NegativeTTL time.Duration
	// Concurrency caps the lookups in flight at once.
	Concurrency int
	// Queue caps the domains waiting for Run; past it Peek drops them
	// (the next event of the domain queues it again).
	Queue int
	// SaveFunc, when set, is called by Run with each domain its lookup
	// placed (Other included, failures not), to store the answer.
	SaveFunc   func(ctx context.Context, domain string, p mailboxprovider.Provider) error
	NowFunc    func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Resolver places domains with their mailbox providers. Its methods are
// safe for concurrent use.
type Resolver struct {
	dns         *net.Resolver
	timeout     time.Duration
	ttl, negTTL time.Duration
	cache       *lru.Cache[string, entry]
	slots       chan struct{}
	flight      singleflight.Group
	queue       chan string
	save        func(ctx context.Context, domain string, p mailboxprovider.Provider) error
	now         func() time.Time
	logger      *slog.Logger

	mu     sync.Mutex
	queued map[string]bool

	lookups *prometheus.CounterVec
	dropped prometheus.Counter
}

type entry struct {
	p       mailboxprovider.Provider
	expires time.Time
}

// Lookup outcomes, the label of bounced_mx_lookups_total.
const (
	outcomeProvider = "provider" // an MX host of the table
	outcomeOther    = "other"    // other hosts, none, or no such domain
	outcomeFailed   = "failed"   // timeout, SERVFAIL, refused
)

// New returns a Resolver; call Run for Peek's queued domains to be looked up.
func New(opts Options) (*Resolver, error) {
	r := &Resolver{
		dns:     cmp.Or(opts.Resolver, net.DefaultResolver),
		timeout: cmp.Or(opts.Timeout, TimeoutDefault),
		ttl:     cmp.Or(opts.TTL, TTLDefault),
		negTTL:  cmp.Or(opts.NegativeTTL, NegativeTTLDefault),
		slots:   make(chan struct{}, cmp.Or(opts.Concurrency, ConcurrencyDefault)),
		queue:   make(chan string, cmp.Or(opts.Queue, QueueDefault)),
		save:    opts.SaveFunc,
		now:     opts.NowFunc,
		logger:  cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)).With("component", "mxresolve"),
		queued:  map[string]bool{},
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "mx", Name: "lookups_total",
			Help: "MX lookups of recipient domains, by outcome: provider (a known mailbox provider's host), other, failed.",
		}, []string{"outcome"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "mx", Name: "lookups_dropped_total",
			Help: "Recipient domains not queued for an MX lookup because the queue was full.",
		}),
	}
	if r.now == nil {
		r.now = time.Now
	}
	if opts.Timeout < 0 || opts.CacheSize < 0 || opts.Concurrency < 0 || opts.Queue < 0 || opts.TTL < 0 || opts.NegativeTTL < 0 {
		return nil, errors.New("mxresolve: negative option")
	}
	var err error
	if r.cache, err = lru.New[string, entry](cmp.Or(opts.CacheSize, CacheSizeDefault)); err != nil {
		return nil, fmt.Errorf("mxresolve: cache: %w", err)
	}
	for _, o := range []string{outcomeProvider, outcomeOther, outcomeFailed} {
		r.lookups.WithLabelValues(o)
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{r.lookups, r.dropped} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// ErrLookup wraps a failed lookup's error.
var ErrLookup = errors.New("mxresolve: lookup failed")

// Peek returns domain's provider without waiting: from the table, or a
// cached lookup; else Unknown, and the domain is queued for Run.
func (r *Resolver) Peek(domain string) mailboxprovider.Provider {
	domain = clean(domain)
	if p, ok := known(domain); ok {
		return p
	}
	if p, ok := r.cached(domain); ok {
		return p
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.queued[domain] {
		return mailboxprovider.Unknown
	}
	select {
	case r.queue <- domain:
		r.queued[domain] = true
	default:
		r.dropped.Inc()
	}
	return mailboxprovider.Unknown
}

// Lookup returns domain's provider: from the table, a cached lookup, or
// a lookup of its MX records now, which waits for a free slot and takes
// at most the timeout. A failed lookup is Unknown with an error wrapping
// ErrLookup, and is remembered for the negative TTL.
func (r *Resolver) Lookup(ctx context.Context, domain string) (mailboxprovider.Provider, error) {
	p, _, err := r.lookup(ctx, clean(domain))
	return p, err
}

// lookup is Lookup; asked says whether DNS answered this call (not the
// table or the cache).
func (r *Resolver) lookup(ctx context.Context, domain string) (p mailboxprovider.Provider, asked bool, err error) {
	if p, ok := known(domain); ok {
		return p, false, nil
	}
	if p, ok := r.cached(domain); ok {
		if p == mailboxprovider.Unknown {
			return p, false, fmt.Errorf("%w: %s failed recently", ErrLookup, domain)
		}
		return p, false, nil
	}
	v, err, _ := r.flight.Do(domain, func() (any, error) { return r.ask(ctx, domain) })
	if err != nil {
		return mailboxprovider.Unknown, true, err
	}
	return v.(mailboxprovider.Provider), true, nil
}

// ask looks domain's MX records up and caches the answer.
func (r *Resolver) ask(ctx context.Context, domain string) (mailboxprovider.Provider, error) {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return mailboxprovider.Unknown, fmt.Errorf("%w: %w", ErrLookup, ctx.Err())
	}
	defer func() { <-r.slots }()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// The name is absolute: a resolver's search domains never apply.
	mxs, err := r.dns.LookupMX(ctx, domain+".")
	var dnsErr *net.DNSError
	switch {
	case err == nil:
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		mxs = nil // no such domain, or no MX records: no provider's
	default:
		r.lookups.WithLabelValues(outcomeFailed).Inc()
		r.cache.Add(domain, entry{mailboxprovider.Unknown, r.now().Add(r.negTTL)})
		return mailboxprovider.Unknown, fmt.Errorf("%w: %s: %w", ErrLookup, domain, err)
	}
	p := mailboxprovider.ForMX(preferred(mxs))
	if p == mailboxprovider.Other {
		r.lookups.WithLabelValues(outcomeOther).Inc()
	} else {
		r.lookups.WithLabelValues(outcomeProvider).Inc()
	}
	r.cache.Add(domain, entry{p, r.now().Add(r.ttl)})
	return p, nil
}

// preferred returns the hosts of the most preferred MX records (the
// lowest preference): those that receive the domain's mail.
func preferred(mxs []*net.MX) []string {
	if len(mxs) == 0 {
		return nil
	}
	best := slices.MinFunc(mxs, func(a, b *net.MX) int { return cmp.Compare(a.Pref, b.Pref) }).Pref
	var hosts []string
	for _, mx := range mxs {
		if mx.Pref == best {
			hosts = append(hosts, mx.Host)
		}
	}
	return hosts
}

// cached returns domain's unexpired cache entry.
func (r *Resolver) cached(domain string) (mailboxprovider.Provider, bool) {
	e, ok := r.cache.Get(domain)
	if !ok {
		return "", false
	}
	if !r.now().Before(e.expires) {
		r.cache.Remove(domain)
		return "", false
	}
	return e.p, true
}

// Seed remembers domain's provider from a stored answer (at start), for
// half the TTL to the whole of it (spread, so that a cache filled at once
// is not looked up again all at once). Unknown and a value not of the
// table are ignored.
func (r *Resolver) Seed(domain string, p mailboxprovider.Provider) {
	if !p.Valid() || p == mailboxprovider.Unknown {
		return
	}
	ttl := r.ttl/2 + rand.N(r.ttl/2+1)
	r.cache.Add(clean(domain), entry{p, r.now().Add(ttl)})
}

// Run looks up the domains Peek queued, at most Concurrency at once, and
// saves each answer through SaveFunc, until ctx ends.
func (r *Resolver) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range cap(r.slots) {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case d := <-r.queue:
					r.resolveQueued(ctx, d)
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

func (r *Resolver) resolveQueued(ctx context.Context, domain string) {
	defer func() {
		r.mu.Lock()
		delete(r.queued, domain)
		r.mu.Unlock()
	}()
	p, asked, err := r.lookup(ctx, domain)
	switch {
	case err != nil:
		r.logger.Debug("mx lookup failed", "domain", domain, "error", err)
	case asked && r.save != nil:
		if err := r.save(ctx, domain, p); err != nil && ctx.Err() == nil {
			r.logger.Warn("saving a domain's mailbox provider", "domain", domain, "error", err)
		}
	}
}

// known returns the provider of a domain the table knows, and Unknown
// for a name that cannot be looked up (empty, an address literal, not a
// host name).
func known(domain string) (mailboxprovider.Provider, bool) {
	if p, ok := mailboxprovider.ForDomain(domain); ok {
		return p, true
	}
	if !isHostname(domain) {
		return mailboxprovider.Unknown, true
	}
	return "", false
}

// isHostname reports whether s is a plausible DNS host name of two or
// more labels (RFC 1123 letters, digits and hyphens; IDNA in ASCII form).
func isHostname(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		if strings.ContainsFunc(label, func(r rune) bool {
			return (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_'
		}) {
			return false
		}
	}
	return true
}

func clean(s string) string { return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".") }
