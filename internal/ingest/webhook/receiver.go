package webhook

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// Recorder stores an input with its events in one transaction and returns
// only once it has committed. It returns store.ErrUnavailable when the
// database cannot be reached.
type Recorder interface {
	Record(ctx context.Context, in store.Input) (store.Outcome, error)
}

// NonceClaimer keeps the nonces of providers whose signature does not
// cover the body (Mailgun signs a timestamp and a token only), where
// every replica and every restart sees them. ClaimNonce reports false
// when nonce was claimed, unexpired at now, with another body; it returns
// store.ErrUnavailable when the database is down. A Recorder that is one
// is used as one; receiving from such a provider needs it.
type NonceClaimer interface {
	ClaimNonce(ctx context.Context, provider, nonce string, body [32]byte, now, expires time.Time) (bool, error)
}

// SubscriptionKeeper remembers the subscriptions this service confirmed
// (SNS topics), where every replica and every restart sees them, so a
// re-sent confirmation request is confirmed once. ClaimSubscription
// reports whether the caller should confirm (no one did, no one is);
// SettleSubscription ends such a claim, confirmed or not (a failed one is
// tried again next time); ForgetSubscription drops a subscription that
// ended. They return store.ErrUnavailable when the database is down. A
// Recorder that is one is used as one; receiving SES needs it.
type SubscriptionKeeper interface {
	ClaimSubscription(ctx context.Context, provider, topic string, now time.Time) (bool, error)
	SettleSubscription(ctx context.Context, provider, topic string, confirmed bool, now time.Time) error
	ForgetSubscription(ctx context.Context, provider, topic string) error
}

// SentLookup finds the messages reported sent (POST /v1/sent) that
// events name, to attribute them to their tenant and list (see
// store.SentRecords.ScopeFor); it returns store.ErrUnavailable when the
// database is down. A Recorder that is one is used as one.
type SentLookup interface {
	SentRecords(ctx context.Context, ids, addresses []string) (store.SentRecords, error)
}

var (
	_ SentLookup         = (*store.DB)(nil)
	_ SentLookup         = (*store.GroupCommitter)(nil)
	_ Recorder           = (*store.DB)(nil)
	_ Recorder           = (*store.GroupCommitter)(nil)
	_ NonceClaimer       = (*store.DB)(nil)
	_ NonceClaimer       = (*store.GroupCommitter)(nil)
	_ SubscriptionKeeper = (*store.DB)(nil)
	_ SubscriptionKeeper = (*store.GroupCommitter)(nil)
)

// Options are the Receiver's dependencies; zero fields take defaults.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	NowFunc    func() time.Time
	// HTTPClient fetches SNS signing certificates and confirms SNS
	// subscriptions; a client with a 10 s timeout when nil.
	HTTPClient *http.Client
}

// Receiver verifies, decodes and stores webhook requests.
type Receiver struct {
	// providers holds each configured provider's bindings: one per
	// tenant with credentials of its own, then the unbound one, in the
	// order a request is verified against them.
	providers map[string][]binding
	rec       Recorder
	lookup    SentLookup
	logger    *slog.Logger
	now       func() time.Time
	metrics   metrics
}

// request is one webhook delivery as the providers see it.
type request struct {
	header http.Header
	body   []byte
	now    time.Time
	// Set by verify for decode: what was read to authenticate.
	svixID string
	sns    *snsEnvelope
}

// decoded is what a provider read from a verified request.
type decoded struct {
	kind   string
	events []parse.Event
	// types counts the provider's event types seen; ignored counts the
	// ones that say nothing about deliverability, unknown the ones this
	// package does not know.
	types   map[string]int
	ignored int
	unknown int
	// unaddressed counts events dropped for want of a usable address.
	unaddressed int
	// confirmURL is an SNS subscription to confirm, on topic.
	confirmURL, topic string
	// origin is the provider's type of each event; ignoredTypes and
	// unknownTypes the types ignored and not known, in order: what the
	// README's table of types is checked against.
	origin                     []string
	ignoredTypes, unknownTypes []string
}

func newDecoded(kind string) *decoded { return &decoded{kind: kind, types: map[string]int{}} }

// add records events of a provider type, each with its address
// normalised; an event without a usable address is counted, not kept.
func (d *decoded) add(providerType string, evs ...parse.Event) {
	d.types[providerType]++
	for _, ev := range evs {
		addr, err := parse.NormalizeAddress(ev.Address)
		if err != nil {
			d.unaddressed++
			continue
		}
		ev.Address = addr
		d.events = append(d.events, ev)
		d.origin = append(d.origin, providerType)
	}
}

func (d *decoded) ignore(providerType string) {
	d.types[providerType]++
	d.ignored++
	d.ignoredTypes = append(d.ignoredTypes, providerType)
}

func (d *decoded) unknownType(providerType string) {
	d.types[clipType(providerType)]++
	d.unknown++
	d.unknownTypes = append(d.unknownTypes, clipType(providerType))
}

// clipType bounds what an unknown type can put into the stored summary.
func clipType(t string) string {
	if len(t) > 64 {
		t = t[:64]
	}
	if t == "" {
		t = "(none)"
	}
	return t
}

// binding is a provider built from the credentials of one tenant ("" for
// the credentials bound to none).
type binding struct {
	tenant string
	p      provider
}

// provider is one ESP's authentication and payload format.
type provider interface {
	// verify authenticates req; it returns a *RejectError when it cannot.
	verify(ctx context.Context, req *request) error
	// decode reads the events of a verified request. An error means the
	// payload is not what the provider sends; it is stored anyway.
	decode(req *request) (*decoded, error)
}

// actor is a provider with something to do once a request is verified and
// decoded, before it is stored (SNS confirms subscriptions).
type actor interface {
	act(ctx context.Context, d *decoded, now time.Time) error
}

// Summary is stored as the result of a webhook input.
type Summary struct {
	Provider string         `json:"provider"`
	Kind     string         `json:"kind"`
	Events   int            `json:"events"`
	Types    map[string]int `json:"types"`
	Ignored  int            `json:"ignored"`
	Unknown  int            `json:"unknown"`
	// Unaddressed counts events without a usable recipient address.
	Unaddressed int `json:"unaddressed"`
	// Tenant is the tenant whose credentials the request verified with,
	// when they are bound to one.
	Tenant string `json:"tenant,omitempty"`
}

// New builds a receiver for every provider cfg has credentials for. A nil
// rec makes a receiver that only checks cfg.
func New(cfg config.Webhooks, rec Recorder, opts Options) (*Receiver, error) {
	r := &Receiver{providers: map[string][]binding{}, rec: rec, logger: opts.Logger, now: opts.NowFunc}
	r.lookup, _ = rec.(SentLookup)
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	r.logger = r.logger.With("component", "ingest.webhook")
	if r.now == nil {
		r.now = time.Now
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	window := cmp.Or(cfg.TimestampWindow, config.WebhookTimestampWindowDefault)
	nonces, _ := rec.(NonceClaimer)
	keeper, _ := rec.(SubscriptionKeeper)
	var errs []error
	for _, name := range Providers() {
		build := func(settings config.ProviderSettings) (provider, error) {
			return registry[name].build(&builder{settings: settings, window: window, client: client, logger: r.logger,
				recording: rec != nil, nonces: nonces, subscriptions: keeper})
		}
		for _, tenant := range slices.Sorted(maps.Keys(cfg.Tenants)) {
			settings, ok := cfg.Tenants[tenant][name]
			if !ok {
				continue
			}
			p, err := build(settings)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("webhook: tenant %q: %s: %w", tenant, name, err))
			case p == nil:
				errs = append(errs, fmt.Errorf("webhook: tenant %q: %s: no credentials", tenant, name))
			default:
				r.providers[name] = append(r.providers[name], binding{tenant: tenant, p: p})
			}
		}
		p, err := build(cfg.Providers[name])
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("webhook: %s: %w", name, err))
		case p != nil:
			r.providers[name] = append(r.providers[name], binding{p: p})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var err error
	if r.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	return r, nil
}

// Configured lists the providers with credentials, in route order.
func (r *Receiver) Configured() []string {
	var out []string
	for _, name := range Providers() {
		if r.providers[name] != nil {
			out = append(out, name)
		}
	}
	return out
}

// Tenants lists, by provider, the tenants with credentials bound to
// them, for providers that have any.
func (r *Receiver) Tenants() map[string][]string {
	out := map[string][]string{}
	for name, bs := range r.providers {
		for _, b := range bs {
			if b.tenant != "" {
				out[name] = append(out[name], b.tenant)
			}
		}
	}
	return out
}

// Receive reads one webhook request for provider from body (which the
// caller caps), verifies and decodes it and records it. It answers:
//   - store.ErrNotFound for a provider that is not configured;
//   - a *RejectError for a request that fails authentication or cannot be
//     read far enough to try (nothing is stored);
//   - the reader's error, such as *http.MaxBytesError, for a body that
//     could not be read;
//   - store.ErrUnavailable when the database is down (nothing was
//     acknowledged; the provider should retry).
//
// A verified payload that cannot be decoded is stored with parse status
// failed and returned without error; the caller reports it.
func (r *Receiver) Receive(ctx context.Context, providerName string, header http.Header, body io.Reader) (store.Outcome, error) {
	bindings := r.providers[providerName]
	if len(bindings) == 0 {
		return store.Outcome{}, fmt.Errorf("webhook: provider %q: %w", providerName, store.ErrNotFound)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			r.reject(providerName, reasonTooLarge)
		}
		return store.Outcome{}, err
	}
	req := &request{header: header, body: raw, now: r.now()}
	b, err := verifyBinding(ctx, bindings, req)
	if err != nil {
		var rej *RejectError
		if errors.As(err, &rej) {
			r.reject(providerName, rej.Reason)
			r.logger.DebugContext(ctx, "webhook rejected", "provider", providerName, "reason", rej.Reason, "error", err)
		}
		return store.Outcome{}, err
	}
	p := b.p
	in := store.Input{Source: "webhook", Provider: providerName, ContentType: contentType(header), Raw: raw}
	d, derr := decodeSafely(p, req)
	if derr == nil {
		derr = r.attribute(ctx, b.tenant, d)
		if errors.Is(derr, store.ErrUnavailable) {
			r.metrics.requests.WithLabelValues(providerName, "unavailable").Inc()
			return store.Outcome{}, derr
		}
	}
	if derr != nil {
		in.Status, in.Error = store.ParseFailed, derr.Error()
	} else {
		if a, ok := p.(actor); ok {
			if err := a.act(ctx, d, req.now); err != nil {
				r.metrics.requests.WithLabelValues(providerName, "error").Inc()
				return store.Outcome{}, err
			}
		}
		in.Status, in.Kind, in.Events = store.ParseParsed, d.kind, d.events
		in.Result = Summary{Provider: providerName, Kind: d.kind, Events: len(d.events), Types: d.types, Ignored: d.ignored, Unknown: d.unknown,
			Unaddressed: d.unaddressed, Tenant: b.tenant}
	}
	out, err := r.rec.Record(ctx, in)
	if err != nil {
		outcome := "error"
		if errors.Is(err, store.ErrUnavailable) {
			outcome = "unavailable"
		}
		r.metrics.requests.WithLabelValues(providerName, outcome).Inc()
		return store.Outcome{}, err
	}
	switch {
	case derr != nil:
		r.metrics.requests.WithLabelValues(providerName, "unparsable").Inc()
		r.logger.WarnContext(ctx, "webhook payload not understood; stored", "provider", providerName, "raw_id", out.Message.ID, "error", derr)
	case !out.Created:
		r.metrics.requests.WithLabelValues(providerName, "replayed").Inc()
	default:
		r.metrics.requests.WithLabelValues(providerName, "accepted").Inc()
		r.count(providerName, d)
	}
	return out, nil
}

// verifyBinding authenticates req with each binding in turn and returns
// the first it verifies with. Credentials are bound once (config checks
// it), so at most one can verify; tenants' bindings come first all the
// same, so were two ever to verify, the narrower would win. A request
// none verifies gets the last binding's refusal (the unbound one's, when
// there is one); an error that is not a refusal (the database is down)
// ends the search.
func verifyBinding(ctx context.Context, bindings []binding, req *request) (binding, error) {
	var err error
	for _, b := range bindings {
		if err = b.p.verify(ctx, req); err == nil {
			return b, nil
		}
		var rej *RejectError
		if !errors.As(err, &rej) {
			return binding{}, err
		}
	}
	return binding{}, err
}

// attribute places each event in its scope (store.SentRecords.ScopeFor):
// inside the tenant the credentials are bound to, in the scope the sender
// named (the generic webhook's scope), else in the tenant and list of the
// message reported sent the event names by its Message-ID. A named scope
// that the tenant may not use is an error: the request is stored, not
// read, and answered 422.
func (r *Receiver) attribute(ctx context.Context, tenant string, d *decoded) error {
	var ids, addrs []string
	for _, ev := range d.events {
		if ev.OriginalMessageID != "" && ev.Scope == "" {
			ids, addrs = append(ids, ev.OriginalMessageID), append(addrs, ev.Address)
		}
	}
	var recs store.SentRecords
	if r.lookup != nil && len(ids) > 0 {
		var err error
		if recs, err = r.lookup.SentRecords(ctx, ids, addrs); err != nil {
			return err
		}
	}
	for i, ev := range d.events {
		a := store.Attribution{Tenant: tenant}
		if ev.Scope != "" {
			q, err := store.QualifyScope(tenant, ev.Scope)
			if err != nil {
				return fmt.Errorf("event %d: scope %q: %w", i, ev.Scope, err)
			}
			a.Scope = q
		} else if ev.OriginalMessageID != "" {
			a.IDs = []string{ev.OriginalMessageID}
		}
		d.events[i].Scope = recs.ScopeFor(a, ev.Address)
	}
	return nil
}

// decodeSafely turns a decoder panic into an error: a payload must never
// take the process down, and the raw bytes are kept for a later look.
func decodeSafely(p provider, req *request) (d *decoded, err error) {
	defer func() {
		if v := recover(); v != nil {
			d, err = nil, fmt.Errorf("webhook: decoder failed: %v", v)
		}
	}()
	return p.decode(req)
}

func (r *Receiver) reject(providerName, reason string) {
	r.metrics.rejected.WithLabelValues(providerName, reason).Inc()
	r.metrics.requests.WithLabelValues(providerName, "rejected").Inc()
}

func (r *Receiver) count(providerName string, d *decoded) {
	byType := map[parse.EventType]int{}
	for _, ev := range d.events {
		byType[ev.Type]++
	}
	for t, n := range byType {
		r.metrics.events.WithLabelValues(providerName, string(t)).Add(float64(n))
	}
	if d.ignored > 0 {
		r.metrics.events.WithLabelValues(providerName, "ignored").Add(float64(d.ignored))
	}
	if d.unknown > 0 {
		r.metrics.events.WithLabelValues(providerName, "unknown").Add(float64(d.unknown))
	}
}

// contentType is the request's media type, kept with the raw bytes.
func contentType(h http.Header) string {
	ct := h.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err == nil {
		return mt
	}
	if ct == "" || len(ct) > 100 {
		return "application/octet-stream"
	}
	return ct
}

type metrics struct {
	requests *prometheus.CounterVec
	rejected *prometheus.CounterVec
	events   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (metrics, error) {
	m := metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "webhook", Name: "requests_total",
			Help: "Webhook requests by provider and outcome (accepted, replayed, unparsable, rejected, unavailable, error).",
		}, []string{"provider", "outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "webhook", Name: "rejected_total",
			Help: "Webhook requests refused before storing, by provider and reason.",
		}, []string{"provider", "reason"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "webhook", Name: "events_total",
			Help: "Events read from committed webhook requests, by provider and type (ignored and unknown types included).",
		}, []string{"provider", "type"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.rejected, m.events} {
		if err := reg.Register(c); err != nil {
			return m, err
		}
	}
	return m, nil
}
