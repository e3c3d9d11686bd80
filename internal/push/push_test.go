package push_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/push"
	"github.com/bounced/bounced/internal/store"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// receiver is a real HTTP receiver of deliveries on 127.0.0.1: it
// verifies each with its secret and answers what answer says.
type receiver struct {
	t      *testing.T
	secret string
	srv    *http.Server
	addr   string
	mu     sync.Mutex
	got    []received
	// answer decides each answer from the number of requests so far (1
	// for the first); 200 when nil.
	answer func(n int, w http.ResponseWriter) bool
}

type received struct {
	id   string
	body map[string]any
}

// startReceiver listens on addr ("127.0.0.1:0" for any port).
func startReceiver(t *testing.T, secret, addr string) *receiver {
	t.Helper()
	r := &receiver{t: t, secret: secret}
	r.listen(addr)
	return r
}

func (r *receiver) listen(addr string) {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // a port just closed may take a moment to be free again
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	r.t.Cleanup(func() { _ = r.srv.Close() })
}

func (r *receiver) url() string { return "http://" + r.addr + "/hooks" }

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := push.Verify(r.secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("delivery does not verify: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	n := len(r.got) + 1
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		r.t.Errorf("delivery body %q: %v", body, err)
	}
	answer := r.answer
	r.mu.Unlock()
	if answer != nil && !answer(n, w) {
		r.mu.Lock()
		r.got = append(r.got, received{}) // counted, not kept
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	r.got = append(r.got, received{id: req.Header.Get(push.HeaderID), body: m})
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// ids returns the webhook-ids of the deliveries accepted.
func (r *receiver) ids() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, g := range r.got {
		if g.id != "" {
			out[g.id]++
		}
	}
	return out
}

// deliverer runs a Deliverer over db with fast retries until the test
// ends.
func deliverer(t *testing.T, db *store.DB, opts push.Options) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer, opts.Logger = reg, dbtest.Logger(t)
	opts.AllowPrivate = true
	opts.BackoffBase = cmpOr(opts.BackoffBase, 20*time.Millisecond)
	opts.BackoffMax = cmpOr(opts.BackoffMax, 100*time.Millisecond)
	opts.PollInterval = 20 * time.Millisecond
	d, err := push.New(db, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return reg
}

func cmpOr(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func subscribe(t *testing.T, db *store.DB, url, secret string) store.Subscription {
	t.Helper()
	s, err := db.CreateSubscription(context.Background(), store.NewSubscription{URL: url, Secret: secret, EventTypes: store.ChangeTypes()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func suppress(t *testing.T, db *store.DB, emails ...string) {
	t.Helper()
	items := make([]store.NewSuppression, len(emails))
	for i, e := range emails {
		items[i] = store.NewSuppression{Email: e, Reason: store.ReasonManual}
	}
	if _, err := db.AddSuppressions(context.Background(), items, "test", "api"); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func deliveries(t *testing.T, db *store.DB, sub int64) []store.Delivery {
	t.Helper()
	ds, _, err := db.ListDeliveries(context.Background(), sub, store.DeliveryFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestDeliveriesSignedRetriedDelivered: a receiver that fails twice gets
// the change on the third attempt, signed so that it verifies, with the
// change's id as webhook-id on every attempt.
func TestDeliveriesSignedRetriedDelivered(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, store.Options{})
	secret := push.NewSecret()
	rcv := startReceiver(t, secret, "127.0.0.1:0")
	rcv.answer = func(n int, w http.ResponseWriter) bool {
		if n <= 2 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return false
		}
		return true
	}
	sub := subscribe(t, db, rcv.url(), secret)
	reg := deliverer(t, db, push.Options{})
	suppress(t, db, "gone@example.com")
	waitFor(t, "the delivery", func() bool { return len(rcv.ids()) == 1 })
	ds := deliveries(t, db, sub.ID)
	waitFor(t, "the delivery's settle", func() bool { ds = deliveries(t, db, sub.ID); return ds[0].State == store.DeliveryDelivered })
	if d := ds[0]; d.Attempts != 3 || d.LastStatus == nil || *d.LastStatus != 204 || d.DeliveredAt == nil {
		t.Errorf("delivery = %+v, want delivered on attempt 3 with 204", d)
	}
	rcv.mu.Lock()
	got := rcv.got[2]
	rcv.mu.Unlock()
	data, _ := got.body["data"].(map[string]any)
	if got.body["type"] != "suppression_added" || data["email"] != "gone@example.com" || got.id != fmt.Sprint(ds[0].ChangeID) {
		t.Errorf("delivered %s %v, want suppression_added of gone@example.com with webhook-id %d", got.id, got.body, ds[0].ChangeID)
	}
	if n := testutil.ToFloat64(mustVec(t, reg, "bounced_outbound_attempts_total", "http_error")); n != 2 {
		t.Errorf("http_error attempts = %v, want 2", n)
	}
	s, err := db.GetSubscription(context.Background(), sub.ID)
	if err != nil || s.LastSuccessAt == nil || s.LastStatus == nil || *s.LastStatus != 204 {
		t.Errorf("subscription = %+v, %v, want its last success", s, err)
	}
}

func mustVec(t *testing.T, reg *prometheus.Registry, name, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == outcome {
					return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no %s{%s}", name, outcome)
	return nil
}

// TestReceiverDownAndBack: the receiver is stopped with deliveries in
// flight and pending, and started again on the same address: every
// change arrives, none is lost.
func TestReceiverDownAndBack(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, store.Options{})
	secret := push.NewSecret()
	rcv := startReceiver(t, secret, "127.0.0.1:0")
	addr := rcv.addr
	// The receiver dies mid-delivery: the fifth request never gets an
	// answer.
	var once sync.Once
	rcv.answer = func(n int, w http.ResponseWriter) bool {
		if n >= 5 {
			once.Do(func() { go func() { _ = rcv.srv.Close() }() })
			time.Sleep(200 * time.Millisecond)
			return false
		}
		return true
	}
	sub := subscribe(t, db, "http://"+addr+"/hooks", secret)
	deliverer(t, db, push.Options{Workers: 2})
	var emails []string
	for i := range 20 {
		emails = append(emails, fmt.Sprintf("u%d@example.com", i))
	}
	suppress(t, db, emails...)
	waitFor(t, "the receiver to go down", func() bool {
		for _, d := range deliveries(t, db, sub.ID) {
			if d.LastStatus == nil && d.LastError != "" {
				return true
			}
		}
		return false
	})
	// Back on the same address, answering every request.
	back := startReceiver(t, secret, addr)
	waitFor(t, "every change to arrive", func() bool { return len(rcv.ids())+len(back.ids()) >= 20 && allDelivered(t, db, sub.ID) })
	seen := map[string]bool{}
	for id := range rcv.ids() {
		seen[id] = true
	}
	for id := range back.ids() {
		seen[id] = true
	}
	if len(seen) != 20 {
		t.Errorf("%d distinct changes arrived, want 20", len(seen))
	}
}

func allDelivered(t *testing.T, db *store.DB, sub int64) bool {
	for _, d := range deliveries(t, db, sub) {
		if d.State != store.DeliveryDelivered {
			return false
		}
	}
	return true
}

// TestDeadLetterAndReplay: a delivery failing every attempt is dead after
// the last one, counted, and sent again when replayed.
func TestDeadLetterAndReplay(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, store.Options{})
	secret := push.NewSecret()
	rcv := startReceiver(t, secret, "127.0.0.1:0")
	var mu sync.Mutex
	failing := true
	rcv.answer = func(_ int, w http.ResponseWriter) bool {
		mu.Lock()
		defer mu.Unlock()
		if failing {
			w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
			w.WriteHeader(http.StatusFound) // never followed
			return false
		}
		return true
	}
	sub := subscribe(t, db, rcv.url(), secret)
	reg := deliverer(t, db, push.Options{MaxAttempts: 3})
	suppress(t, db, "dead@example.com")
	var d store.Delivery
	waitFor(t, "the delivery to die", func() bool {
		d = deliveries(t, db, sub.ID)[0]
		return d.State == store.DeliveryDead
	})
	if d.Attempts != 3 || !strings.HasPrefix(d.LastError, "302") || d.NextAttemptAt != nil {
		t.Errorf("dead delivery = %+v, want 3 attempts ending on a 302 not followed", d)
	}
	if n := testutil.ToFloat64(mustVec(t, reg, "bounced_outbound_attempts_total", "http_error")); n != 3 {
		t.Errorf("http_error attempts = %v, want 3", n)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	if _, err := db.ReplayDelivery(context.Background(), sub.ID, d.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replayed delivery", func() bool { return deliveries(t, db, sub.ID)[0].State == store.DeliveryDelivered })
	if len(rcv.ids()) != 1 {
		t.Errorf("received %v, want the one change", rcv.ids())
	}
}

// TestGoneTurnsSubscriptionOff: a 410 answer turns the subscription off;
// its next changes wait until it is turned on again.
func TestGoneTurnsSubscriptionOff(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, store.Options{})
	secret := push.NewSecret()
	rcv := startReceiver(t, secret, "127.0.0.1:0")
	var mu sync.Mutex
	gone := true
	rcv.answer = func(_ int, w http.ResponseWriter) bool {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			w.WriteHeader(http.StatusGone)
			return false
		}
		return true
	}
	sub := subscribe(t, db, rcv.url(), secret)
	deliverer(t, db, push.Options{})
	suppress(t, db, "a@example.com")
	waitFor(t, "the subscription to be turned off", func() bool {
		s, err := db.GetSubscription(context.Background(), sub.ID)
		return err == nil && !s.Enabled && s.DisabledReason != ""
	})
	suppress(t, db, "b@example.com")
	time.Sleep(200 * time.Millisecond)
	if ds := deliveries(t, db, sub.ID); len(ds) != 1 {
		t.Errorf("%d deliveries while turned off, want only the refused one", len(ds))
	}
	mu.Lock()
	gone = false
	mu.Unlock()
	on := true
	if _, err := db.UpdateSubscription(context.Background(), sub.ID, store.SubscriptionPatch{Enabled: &on}, "ops"); err != nil {
		t.Fatal(err)
	}
	suppress(t, db, "c@example.com")
	waitFor(t, "the change after turning it on", func() bool { return len(rcv.ids()) == 1 })
}

// TestPrivateDestinationsRefused: without AllowPrivate, a delivery to a
// loopback receiver is refused at connection time, recorded, and never
// reaches it.
func TestPrivateDestinationsRefused(t *testing.T) {
	t.Parallel()
	db := dbtest.Open(t, store.Options{})
	secret := push.NewSecret()
	rcv := startReceiver(t, secret, "127.0.0.1:0")
	// A name, so only the check of the address dialled can refuse it.
	sub := subscribe(t, db, "http://localhost"+rcv.addr[strings.LastIndex(rcv.addr, ":"):]+"/hooks", secret)
	reg := prometheus.NewRegistry()
	client := push.NewClient(push.ClientOptions{Timeout: 2 * time.Second})
	d, err := push.New(db, push.Options{Client: client, Registerer: reg, PollInterval: 20 * time.Millisecond,
		BackoffBase: time.Hour, Logger: dbtest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	suppress(t, db, "a@example.com")
	var del store.Delivery
	waitFor(t, "the refused attempt", func() bool {
		del = deliveries(t, db, sub.ID)[0]
		return del.Attempts == 1 && del.LastError != ""
	})
	if !strings.Contains(del.LastError, "127.0.0.1 is not a public address") || del.LastStatus != nil {
		t.Errorf("attempt recorded %q (status %v), want the refusal", del.LastError, del.LastStatus)
	}
	if n := testutil.ToFloat64(mustVec(t, reg, "bounced_outbound_attempts_total", "refused")); n != 1 {
		t.Errorf("refused attempts = %v, want 1", n)
	}
	if len(rcv.ids()) != 0 {
		t.Errorf("the receiver got %v", rcv.ids())
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url    string
		allowPrivate bool
		ok           bool
	}{
		{"https", "https://hooks.example.com/bounced", false, true},
		{"http with port", "http://hooks.example.com:8080/x?y=1", false, true},
		{"loopback", "http://127.0.0.1:9000/", false, false},
		{"loopback allowed", "http://127.0.0.1:9000/", true, true},
		{"localhost", "http://localhost/", false, false},
		{"private", "http://10.1.2.3/", false, false},
		{"metadata", "http://169.254.169.254/latest/meta-data", false, false},
		{"ipv6 loopback", "http://[::1]:80/", false, false},
		{"ipv4-mapped loopback", "http://[::ffff:127.0.0.1]/", false, false},
		{"carrier nat", "http://100.64.0.1/", false, false},
		{"ftp", "ftp://hooks.example.com/", false, false},
		{"no host", "https:///path", false, false},
		{"credentials", "https://user:pw@hooks.example.com/", false, false},
		{"relative", "/hooks", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := push.CheckURL(tc.url, tc.allowPrivate)
			if (err == nil) != tc.ok {
				t.Errorf("CheckURL(%q, %v) = %v, want ok %v", tc.url, tc.allowPrivate, err, tc.ok)
			}
		})
	}
}

func TestSignAndVerify(t *testing.T) {
	t.Parallel()
	secret := push.NewSecret()
	key, err := push.SecretKey(secret)
	if err != nil || len(key) != 32 {
		t.Fatalf("SecretKey(NewSecret()) = %d bytes, %v", len(key), err)
	}
	now := time.Now()
	body := []byte(`{"type":"suppression_added"}`)
	h := http.Header{}
	push.Sign(h, key, "42", now, body)
	if err := push.Verify(secret, h, body, now, time.Minute); err != nil {
		t.Errorf("Verify(signed) = %v", err)
	}
	// Several signatures, one valid (a secret being rotated).
	h2 := h.Clone()
	h2.Set(push.HeaderSignature, "v1,bm90IGl0 "+h.Get(push.HeaderSignature))
	if err := push.Verify(secret, h2, body, now, time.Minute); err != nil {
		t.Errorf("Verify(with an old signature first) = %v", err)
	}
	var verr *push.VerifyError
	for name, check := range map[string]error{
		"tampered body": push.Verify(secret, h, []byte(`{"type":"suppression_removed"}`), now, time.Minute),
		"other secret":  push.Verify(push.NewSecret(), h, body, now, time.Minute),
		"too old":       push.Verify(secret, h, body, now.Add(10*time.Minute), 5*time.Minute),
		"no headers":    push.Verify(secret, http.Header{}, body, now, time.Minute),
	} {
		if !errors.As(check, &verr) {
			t.Errorf("%s: Verify = %v, want a VerifyError", name, check)
		}
	}
	for _, bad := range []string{"", "whsec_", "whsec_c2hvcnQ=", "sk_" + secret[6:], "whsec_!!!"} {
		if _, err := push.SecretKey(bad); !errors.Is(err, push.ErrBadSecret) {
			t.Errorf("SecretKey(%q) = %v, want ErrBadSecret", bad, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]time.Duration{1: 5 * time.Second, 2: 10 * time.Second, 5: 80 * time.Second, 30: 6 * time.Hour} {
		got := push.Backoff(n, 5*time.Second, 6*time.Hour)
		if got < want*8/10 || got > want*12/10 {
			t.Errorf("Backoff(%d) = %v, want %v ±20%%", n, got, want)
		}
	}
}

// TestDelivererDiesHoldingDeliveries: a deliverer that claimed
// deliveries and died before sending them (its process killed) holds
// them only for the lease; then another sends them, and the dead one's
// late settlement changes nothing.
func TestDelivererDiesHoldingDeliveries(t *testing.T) {
	t.Parallel()
	var offset atomic.Int64
	db := dbtest.Open(t, store.Options{NowFunc: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	secret := push.NewSecret()
	rcv := startReceiver(t, secret, "127.0.0.1:0")
	sub := subscribe(t, db, rcv.url(), secret)
	suppress(t, db, "a@example.com", "b@example.com", "c@example.com")
	ctx := context.Background()
	held, err := db.ClaimDeliveries(ctx, 10, time.Minute)
	if err != nil || len(held) != 3 {
		t.Fatalf("ClaimDeliveries() = %d jobs, %v; want 3", len(held), err)
	}
	deliverer(t, db, push.Options{})
	time.Sleep(300 * time.Millisecond)
	if n := len(rcv.ids()); n != 0 {
		t.Fatalf("%d deliveries sent while another deliverer held them", n)
	}
	offset.Store(int64(2 * time.Minute)) // the lease runs out
	waitFor(t, "the held deliveries to be sent", func() bool { return len(rcv.ids()) == 3 && allDelivered(t, db, sub.ID) })
	// The dead deliverer's attempt, settled late, is stale.
	if err := db.SettleDelivery(ctx, held[0], store.DeliveryOutcome{State: store.DeliveryDead, Error: "late"}); err != nil {
		t.Fatal(err)
	}
	if !allDelivered(t, db, sub.ID) {
		t.Error("a stale settlement undid a delivery")
	}
}
