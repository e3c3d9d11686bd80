// Package loadgen drives bounced's webhook routes over loopback HTTP with
// signed, uniquely identified events, retries every request that is not
// acknowledged (non-2xx or no answer at all) until it is or time runs
// out, and checks afterwards that every acknowledged event is stored
// exactly once. cmd/bounced-load is its command line; the fault tests use
// it while they kill bounced and restart PostgreSQL.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bounced/bounced/internal/dsntest"
)

// Providers the generator can speak. DSN is not a webhook: it posts raw
// RFC 3464 reports (5.1.1, one recipient each) to POST /v1/messages.
const (
	Generic  = "generic"
	SendGrid = "sendgrid"
	DSN      = "dsn"
)

// SignFunc returns the headers that authenticate body for provider; it
// is called again for every attempt, so timestamps stay fresh.
type SignFunc func(provider string, body []byte) http.Header

// Options bound and shape a run. Requests and Duration both bound it;
// Drain bounds the retries after Duration.
type Options struct {
	URL              string // bounced's base URL; must be loopback
	Provider         string // generic, sendgrid or dsn
	EventsPerRequest int
	Requests         int
	Duration         time.Duration
	Drain            time.Duration
	Concurrency      int
	Rate             float64 // requests per second; 0 for as fast as answered
	Addresses        int     // distinct recipients
	RunID            string  // prefixes every event id
	MaxBackoff       time.Duration
	Sign             SignFunc
	Client           *http.Client
	// OnAck, when set, is called with the index of each acknowledged
	// request (the fault tests keep them across restarts).
	OnAck func(request int)
}

// Result is what a run did.
type Result struct {
	RunID        string         `json:"run_id"`
	Provider     string         `json:"provider"`
	Requests     int            `json:"requests"`
	Acked        int            `json:"acked"`
	GaveUp       int            `json:"gave_up"`
	Attempts     int            `json:"attempts"`
	Unanswered   int            `json:"unanswered"`
	Statuses     map[string]int `json:"statuses"`
	EventsAcked  int            `json:"events_acked"`
	Elapsed      time.Duration  `json:"elapsed_ns"`
	RequestsPerS float64        `json:"requests_per_second"`
	EventsPerS   float64        `json:"events_per_second"`
	LatencyP50   time.Duration  `json:"latency_p50_ns"`
	LatencyP90   time.Duration  `json:"latency_p90_ns"`
	LatencyP99   time.Duration  `json:"latency_p99_ns"`
	LatencyMax   time.Duration  `json:"latency_max_ns"`
	// FailLatencyMax is the slowest answer that was not 2xx (a 503 during
	// an outage should come fast).
	FailLatencyMax time.Duration `json:"fail_latency_max_ns"`
	// AckedRequests are the indices of acknowledged requests; request i
	// carries the events RunID-i-0 ... RunID-i-(EventsPerRequest-1).
	AckedRequests    []int `json:"-"`
	EventsPerRequest int   `json:"events_per_request"`
}

// ErrNotLoopback refuses to load anything but this machine.
var ErrNotLoopback = errors.New("loadgen: the target must be a loopback address")

// CheckLoopback accepts only URLs whose host is, or resolves only to,
// loopback addresses.
func CheckLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("loadgen: %q is not a URL", raw)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%w: %s is %s", ErrNotLoopback, u.Hostname(), ip)
		}
	}
	return nil
}

func (o *Options) defaults() error {
	if err := CheckLoopback(o.URL); err != nil {
		return err
	}
	if o.Provider != Generic && o.Provider != SendGrid && o.Provider != DSN {
		return fmt.Errorf("loadgen: provider %q is not generic, sendgrid or dsn", o.Provider)
	}
	if o.Provider == DSN {
		o.EventsPerRequest = 1 // one recipient per report
	}
	if o.Sign == nil && o.Provider != DSN {
		return errors.New("loadgen: no signer")
	}
	if o.Requests <= 0 && o.Duration <= 0 {
		return errors.New("loadgen: bound the run with requests or a duration")
	}
	if o.Requests <= 0 {
		o.Requests = 1 << 31
	}
	if o.Duration <= 0 {
		o.Duration = 24 * time.Hour
	}
	o.EventsPerRequest = max(o.EventsPerRequest, 1)
	o.Concurrency = max(o.Concurrency, 1)
	o.Addresses = max(o.Addresses, 1)
	if o.RunID == "" {
		o.RunID = fmt.Sprintf("r%x", rand.Uint64()&0xffffffffff)
	}
	if strings.ContainsAny(o.RunID, `%_\-`) {
		return errors.New("loadgen: run id must not contain %, _, \\ or -")
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Second
	}
	if o.Drain <= 0 {
		o.Drain = 30 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{
			Timeout: 30 * time.Second,
			Transport: &http.Transport{
				MaxIdleConnsPerHost: o.Concurrency, MaxConnsPerHost: o.Concurrency,
				DisableCompression: true,
			},
		}
	}
	return nil
}

// Run sends requests until Requests are acknowledged or given up, or
// Duration has passed (then retries what is pending for at most Drain).
func Run(ctx context.Context, o Options) (Result, error) {
	if err := o.defaults(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	r := &runner{o: o, start: start.UTC().Truncate(time.Second),
		res: Result{RunID: o.RunID, Provider: o.Provider, Statuses: map[string]int{}, EventsPerRequest: o.EventsPerRequest}}
	issueUntil := start.Add(o.Duration)
	giveUpAt := issueUntil.Add(o.Drain)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= o.Requests || time.Now().After(issueUntil) || ctx.Err() != nil {
					return
				}
				if o.Rate > 0 {
					// Request i is due at start + i/rate: an open-loop
					// schedule, so slow answers do not lower the rate.
					due := start.Add(time.Duration(float64(i) / o.Rate * float64(time.Second)))
					select {
					case <-time.After(time.Until(due)):
					case <-ctx.Done():
						return
					}
				}
				r.send(ctx, i, giveUpAt)
			}
		})
	}
	wg.Wait()
	r.res.Elapsed = time.Since(start)
	r.finish()
	return r.res, ctx.Err()
}

type runner struct {
	o         Options
	start     time.Time // dates the DSNs: a retry sends the same bytes
	mu        sync.Mutex
	res       Result
	latencies []time.Duration
}

// body builds request i: its events have ids runID-i-j, so every event of
// the run is distinct and a retry sends the very same bytes.
func (r *runner) body(i int) ([]byte, []string) {
	o := r.o
	if o.Provider == DSN {
		// The report's id names the returned message (<orig-runID-i@...>),
		// which is how Check finds its event.
		id := o.RunID + "-" + strconv.Itoa(i)
		addr := fmt.Sprintf("u%d.%s@load%d.example.com", i%o.Addresses, o.RunID, i%97)
		return dsntest.DSNAt(r.start, id, dsntest.Rcpt{Address: addr, Status: "5.1.1",
			Diagnostic: "smtp; 550 5.1.1 <" + addr + ">: Recipient address rejected: User unknown"}), []string{id + "-0"}
	}
	ids := make([]string, o.EventsPerRequest)
	var evs []map[string]any
	for j := range o.EventsPerRequest {
		id := o.RunID + "-" + strconv.Itoa(i) + "-" + strconv.Itoa(j)
		ids[j] = id
		n := (i*o.EventsPerRequest + j) % o.Addresses
		addr := fmt.Sprintf("u%d.%s@load%d.example.com", n, o.RunID, n%97)
		kind := (i*7 + j*13) % 20
		switch o.Provider {
		case Generic:
			ev := map[string]any{"recipient": addr, "id": id, "occurred_at": time.Now().UTC().Format(time.RFC3339Nano)}
			switch {
			case kind < 11:
				ev["type"] = "delivery"
			case kind < 16:
				ev["status"], ev["diagnostic"] = "4.2.2", "452 4.2.2 Mailbox full"
			case kind < 19:
				ev["status"], ev["diagnostic"] = "5.1.1", "550 5.1.1 User unknown"
			default:
				ev["type"] = "complaint"
			}
			evs = append(evs, ev)
		case SendGrid:
			ev := map[string]any{"email": addr, "sg_event_id": id, "timestamp": time.Now().Unix(), "sg_message_id": "m-" + id}
			switch {
			case kind < 11:
				ev["event"], ev["response"] = "delivered", "250 OK"
			case kind < 16:
				ev["event"], ev["response"], ev["attempt"] = "deferred", "452 4.2.2 Mailbox full", "1"
			case kind < 19:
				ev["event"], ev["type"], ev["status"], ev["reason"] = "bounce", "bounce", "5.1.1", "550 5.1.1 User unknown"
			default:
				ev["event"] = "spamreport"
			}
			evs = append(evs, ev)
		}
	}
	var b []byte
	if o.Provider == Generic && len(evs) == 1 {
		b, _ = json.Marshal(evs[0])
	} else {
		b, _ = json.Marshal(evs)
	}
	return b, ids
}

// send delivers request i, retrying until it is acknowledged or giveUpAt.
func (r *runner) send(ctx context.Context, i int, giveUpAt time.Time) {
	body, ids := r.body(i)
	backoff := 20 * time.Millisecond
	url := r.o.URL + "/v1/webhooks/" + r.o.Provider
	if r.o.Provider == DSN {
		url = r.o.URL + "/v1/messages"
	}
	for {
		status, lat, retryAfter, err := r.attempt(ctx, url, body)
		r.mu.Lock()
		r.res.Attempts++
		if err != nil {
			r.res.Unanswered++
		} else {
			r.res.Statuses[strconv.Itoa(status)]++
			if status/100 != 2 {
				r.res.FailLatencyMax = max(r.res.FailLatencyMax, lat)
			}
		}
		if err == nil && status/100 == 2 {
			r.res.Acked++
			r.res.EventsAcked += len(ids)
			r.res.AckedRequests = append(r.res.AckedRequests, i)
			r.latencies = append(r.latencies, lat)
			r.mu.Unlock()
			if r.o.OnAck != nil {
				r.o.OnAck(i)
			}
			return
		}
		r.mu.Unlock()
		wait := min(max(backoff, retryAfter), r.o.MaxBackoff)
		if time.Now().Add(wait).After(giveUpAt) || ctx.Err() != nil {
			r.mu.Lock()
			r.res.GaveUp++
			r.mu.Unlock()
			return
		}
		select {
		case <-time.After(wait + rand.N(wait/4+1)):
		case <-ctx.Done():
		}
		backoff = min(backoff*2, r.o.MaxBackoff)
	}
}

func (r *runner) attempt(ctx context.Context, url string, body []byte) (int, time.Duration, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, err
	}
	if r.o.Provider == DSN {
		req.Header = http.Header{"Content-Type": {"message/rfc822"}}
	} else {
		req.Header = r.o.Sign(r.o.Provider, body)
	}
	start := time.Now()
	resp, err := r.o.Client.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	lat := time.Since(start)
	var retryAfter time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		retryAfter = time.Duration(s) * time.Second
	}
	return resp.StatusCode, lat, retryAfter, nil
}

func (r *runner) finish() {
	res := &r.res
	res.Requests = res.Acked + res.GaveUp
	if s := res.Elapsed.Seconds(); s > 0 {
		res.RequestsPerS = float64(res.Acked) / s
		res.EventsPerS = float64(res.EventsAcked) / s
	}
	slices.Sort(r.latencies)
	slices.Sort(res.AckedRequests)
	q := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
	}
	res.LatencyP50, res.LatencyP90, res.LatencyP99 = q(.50), q(.90), q(.99)
	if len(r.latencies) > 0 {
		res.LatencyMax = r.latencies[len(r.latencies)-1]
	}
}

// String is the run in a few lines for people.
func (res Result) String() string {
	return fmt.Sprintf("run %s (%s): %d requests acknowledged, %d given up, %d attempts, %d unanswered, statuses %v\n"+
		"%d events acknowledged in %v: %.0f requests/s, %.0f events/s\n"+
		"latency of acknowledged attempts: p50 %v, p90 %v, p99 %v, max %v; slowest refusal %v\n",
		res.RunID, res.Provider, res.Acked, res.GaveUp, res.Attempts, res.Unanswered, res.Statuses,
		res.EventsAcked, res.Elapsed.Round(time.Millisecond), res.RequestsPerS, res.EventsPerS,
		res.LatencyP50.Round(time.Microsecond), res.LatencyP90.Round(time.Microsecond),
		res.LatencyP99.Round(time.Microsecond), res.LatencyMax.Round(time.Microsecond), res.FailLatencyMax.Round(time.Microsecond))
}
