package mxresolve

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bounced/bounced/internal/dnstest"
	"github.com/bounced/bounced/internal/mailboxprovider"
)

// clock is a settable NowFunc.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newResolver(t *testing.T, srv *dnstest.Server, opts Options) (*Resolver, *clock) {
	t.Helper()
	clk := &clock{now: time.Now()}
	opts.Resolver, opts.NowFunc = srv.Resolver(), clk.Now
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second // a loopback server answers at once; only Drop waits
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return r, clk
}

func TestLookup(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	srv.MX("workspace.test", "aspmx.l.google.com", "alt1.aspmx.l.google.com")
	srv.MX("m365.test", "m365-test.mail.protection.outlook.com")
	srv.MX("own.test", "mx1.own.test")
	srv.MX("backup.test", "mx.own.test", "smtp.google.com") // the most preferred host decides
	srv.MX("nullmx.test", ".")
	srv.MX("nodata.test") // the name exists, without MX records
	srv.Fail("servfail.test")
	r, _ := newResolver(t, srv, Options{})
	tests := []struct {
		name, domain string
		want         mailboxprovider.Provider
		failed       bool
		queries      int
	}{
		{"google workspace", "workspace.test", mailboxprovider.Google, false, 1},
		{"microsoft 365, upper case", "M365.TEST", mailboxprovider.Microsoft, false, 1},
		{"own servers", "own.test", mailboxprovider.Other, false, 1},
		{"backup mx does not decide", "backup.test", mailboxprovider.Other, false, 1},
		{"null mx", "nullmx.test", mailboxprovider.Other, false, 1},
		{"no mx records", "nodata.test", mailboxprovider.Other, false, 1},
		{"no such domain", "nxdomain.test", mailboxprovider.Other, false, 1},
		{"servfail", "servfail.test", mailboxprovider.Unknown, true, 1},
		{"table domain, no query", "gmail.com", mailboxprovider.Google, false, 0},
		{"not a host name, no query", "[192.0.2.1]", mailboxprovider.Unknown, false, 0},
		{"one label, no query", "localhost", mailboxprovider.Unknown, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := r.Lookup(t.Context(), tt.domain)
			if got != tt.want || (err != nil) != tt.failed {
				t.Errorf("Lookup(%q) = %q, %v, want %q (failed %v)", tt.domain, got, err, tt.want, tt.failed)
			}
			if tt.failed && !errors.Is(err, ErrLookup) {
				t.Errorf("Lookup(%q) error %v is not ErrLookup", tt.domain, err)
			}
			if q := srv.Queries(tt.domain); q < tt.queries || (tt.queries == 0 && q != 0) {
				t.Errorf("Lookup(%q) sent %d queries, want %d", tt.domain, q, tt.queries)
			}
		})
	}
}

// TestCacheTTL: an answer is kept for the TTL and a failure for the
// negative TTL, then asked again.
func TestCacheTTL(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	srv.MX("a.test", "mx01.mail.icloud.com")
	srv.Fail("bad.test")
	r, clk := newResolver(t, srv, Options{TTL: time.Hour, NegativeTTL: time.Minute})
	ctx := t.Context()
	lookup := func(domain string, want mailboxprovider.Provider, wantQueries int) {
		t.Helper()
		if got, _ := r.Lookup(ctx, domain); got != want {
			t.Errorf("Lookup(%q) = %q, want %q", domain, got, want)
		}
		if q := srv.Queries(domain); q != wantQueries {
			t.Errorf("after Lookup(%q): %d queries, want %d", domain, q, wantQueries)
		}
	}
	lookup("a.test", mailboxprovider.Apple, 1)
	lookup("a.test", mailboxprovider.Apple, 1)
	if got := r.Peek("a.test"); got != mailboxprovider.Apple {
		t.Errorf("Peek(a.test) = %q, want apple from the cache", got)
	}
	q := srv.Queries("bad.test")
	if _, err := r.Lookup(ctx, "bad.test"); !errors.Is(err, ErrLookup) {
		t.Fatalf("Lookup(bad.test) = %v, want ErrLookup", err)
	}
	q = srv.Queries("bad.test") - q // the resolver may ask each of resolv.conf's servers
	if _, err := r.Lookup(ctx, "bad.test"); !errors.Is(err, ErrLookup) {
		t.Errorf("Lookup(bad.test) again = %v, want the cached failure", err)
	}
	if got := srv.Queries("bad.test"); got != q {
		t.Errorf("a cached failure was asked again: %d queries, want %d", got, q)
	}
	if got := r.Peek("bad.test"); got != mailboxprovider.Unknown {
		t.Errorf("Peek(bad.test) = %q, want unknown", got)
	}

	clk.Add(time.Minute)
	srv.MX("bad.test", "aspmx.l.google.com")
	lookup("bad.test", mailboxprovider.Google, q+1)
	lookup("a.test", mailboxprovider.Apple, 1)
	clk.Add(time.Hour)
	lookup("a.test", mailboxprovider.Apple, 2)
}

// TestCacheSize: past CacheSize the least recently used domain goes.
func TestCacheSize(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	for _, d := range []string{"a.test", "b.test", "c.test"} {
		srv.MX(d, "mx."+d)
	}
	r, _ := newResolver(t, srv, Options{CacheSize: 2})
	for _, d := range []string{"a.test", "b.test", "a.test", "c.test", "a.test", "b.test"} {
		if _, err := r.Lookup(t.Context(), d); err != nil {
			t.Fatal(err)
		}
	}
	// a, b cached; a used; c evicts b; a still cached; b asked again.
	for d, want := range map[string]int{"a.test": 1, "b.test": 2, "c.test": 1} {
		if got := srv.Queries(d); got != want {
			t.Errorf("%s asked %d times, want %d", d, got, want)
		}
	}
	if n := r.cache.Len(); n != 2 {
		t.Errorf("cache holds %d domains, want 2", n)
	}
}

// TestTimeout: a server that never answers costs one timeout, and the
// domain is unknown.
func TestTimeout(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	srv.Drop("silent.test")
	r, _ := newResolver(t, srv, Options{Timeout: 100 * time.Millisecond})
	got, err := r.Lookup(t.Context(), "silent.test")
	if got != mailboxprovider.Unknown || !errors.Is(err, ErrLookup) {
		t.Errorf("Lookup(silent.test) = %q, %v, want unknown and ErrLookup", got, err)
	}
	if srv.Queries("silent.test") == 0 {
		t.Error("silent.test was never asked")
	}
}

// TestConcurrency: no more than Concurrency lookups are in flight, and a
// caller waiting for a slot gives up with its context.
func TestConcurrency(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	domains := []string{"h1.test", "h2.test", "h3.test", "h4.test", "h5.test", "h6.test"}
	for _, d := range domains {
		srv.MX(d, "aspmx.l.google.com")
		srv.Hold(d)
	}
	r, _ := newResolver(t, srv, Options{Concurrency: 2})
	var wg sync.WaitGroup
	var done atomic.Int32
	for _, d := range domains {
		wg.Go(func() {
			if p, err := r.Lookup(t.Context(), d); p != mailboxprovider.Google || err != nil {
				t.Errorf("Lookup(%q) = %q, %v", d, p, err)
			}
			done.Add(1)
		})
	}
	// Two are asked; the rest wait for a slot.
	waitFor(t, func() bool { return srv.Held() == 2 })
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := r.Lookup(ctx, "waiting.test"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lookup with every slot taken and a cancelled context = %v, want context.Canceled", err)
	}
	for done.Load() < int32(len(domains)) {
		waitFor(t, func() bool { return srv.Held() > 0 || done.Load() == int32(len(domains)) })
		srv.Release()
	}
	wg.Wait()
	if got := srv.MaxInflight(); got != 2 {
		t.Errorf("at most %d lookups were in flight, want 2", got)
	}
}

// TestPeekQueues: Peek never waits; Run looks the queued domains up and
// saves them; a full queue drops.
func TestPeekQueues(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	srv.MX("corp.test", "corp-test.mail.protection.outlook.com")
	srv.MX("own.test", "mx.own.test")
	srv.Fail("bad.test")
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	saved := map[string]mailboxprovider.Provider{}
	r, _ := newResolver(t, srv, Options{Queue: 3, Registerer: reg, SaveFunc: func(_ context.Context, d string, p mailboxprovider.Provider) error {
		mu.Lock()
		defer mu.Unlock()
		saved[d] = p
		return nil
	}})
	for _, d := range []string{"corp.test", "corp.test", "own.test", "bad.test", "dropped.test"} {
		if got := r.Peek(d); got != mailboxprovider.Unknown {
			t.Errorf("Peek(%q) before Run = %q, want unknown", d, got)
		}
	}
	if got := r.Peek("yahoo.com"); got != mailboxprovider.Yahoo {
		t.Errorf("Peek(yahoo.com) = %q, want yahoo from the table", got)
	}
	if got := testutil.ToFloat64(r.dropped); got != 1 {
		t.Errorf("dropped = %v, want 1 (corp.test queued once, the fourth domain dropped)", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(ctx) }()
	waitFor(t, func() bool {
		return r.Peek("corp.test") == mailboxprovider.Microsoft && r.Peek("own.test") == mailboxprovider.Other
	})
	waitFor(t, func() bool { return testutil.ToFloat64(r.lookups.WithLabelValues(outcomeFailed)) == 1 })
	cancel()
	if err := <-runDone; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]mailboxprovider.Provider{"corp.test": mailboxprovider.Microsoft, "own.test": mailboxprovider.Other}
	if len(saved) != len(want) || saved["corp.test"] != want["corp.test"] || saved["own.test"] != want["own.test"] {
		t.Errorf("saved %v, want %v (no failure saved)", saved, want)
	}
	if n, err := testutil.GatherAndCount(reg, "bounced_mx_lookups_total", "bounced_mx_lookups_dropped_total"); err != nil || n != 4 {
		t.Errorf("registered samples = %d, %v, want 4", n, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkPeek is what ingest pays per event for the mailbox provider
// label: a table domain, and a domain answered from the cache.
func BenchmarkPeek(b *testing.B) {
	srv := dnstest.Start(b)
	srv.MX("corp.test", "corp-test.mail.protection.outlook.com")
	r, err := New(Options{Resolver: srv.Resolver()})
	if err != nil {
		b.Fatal(err)
	}
	if p, err := r.Lookup(b.Context(), "corp.test"); err != nil || p != mailboxprovider.Microsoft {
		b.Fatalf("Lookup(corp.test) = %q, %v", p, err)
	}
	for _, d := range []string{"gmail.com", "corp.test"} {
		b.Run(d, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r.Peek(d) == mailboxprovider.Unknown {
						b.Fatal("unknown")
					}
				}
			})
		})
	}
}

// TestSeed: a stored answer is served without a query until at most the
// TTL has passed; Unknown and free text are not taken.
func TestSeed(t *testing.T) {
	t.Parallel()
	srv := dnstest.Start(t)
	srv.MX("seeded.test", "mx.seeded.test")
	r, clk := newResolver(t, srv, Options{TTL: time.Hour})
	r.Seed("Seeded.Test.", mailboxprovider.Zoho)
	r.Seed("unknown.test", mailboxprovider.Unknown)
	r.Seed("text.test", "free text")
	if got := r.Peek("seeded.test"); got != mailboxprovider.Zoho {
		t.Errorf("Peek(seeded.test) = %q, want the seeded zoho", got)
	}
	if n := r.cache.Len(); n != 1 {
		t.Errorf("cache holds %d domains, want only the seeded answer", n)
	}
	clk.Add(time.Hour)
	if got, err := r.Lookup(t.Context(), "seeded.test"); got != mailboxprovider.Other || err != nil || srv.Queries("seeded.test") != 1 {
		t.Errorf("Lookup(seeded.test) a TTL later = %q, %v after %d queries, want other from one query", got, err, srv.Queries("seeded.test"))
	}
}
