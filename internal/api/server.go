// Package api serves bounced's REST API (described in openapi.yaml), its
// health checks and Prometheus metrics. Errors are RFC 9457 problem
// details; every route is in the one table in routes.
package api

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/bounced/bounced/internal/store"
)

// MessageIngester parses and stores a raw message with its events.
// It returns store.ErrUnavailable when the database is down.
type MessageIngester interface {
	Ingest(ctx context.Context, source, provider string, raw []byte) (store.Outcome, error)
}

// MessageReader reads stored raw inputs. Both return store.ErrNotFound.
type MessageReader interface {
	GetMessage(ctx context.Context, id int64) (store.Message, error)
	GetMessageBody(ctx context.Context, id int64) ([]byte, string, error)
}

// SuppressionStore reads and edits the suppression list. Get and Delete
// return store.ErrNotFound for an address not listed.
type SuppressionStore interface {
	GetSuppression(ctx context.Context, email, scope string) (store.Suppression, error)
	ListSuppressions(ctx context.Context, f store.SuppressionFilter) ([]store.Suppression, string, error)
	DeleteSuppression(ctx context.Context, email, scope, actor, note string) (store.Suppression, error)
}

// EventLister lists and counts events; ListEvents returns
// store.ErrBadCursor for a cursor it did not issue.
type EventLister interface {
	ListEvents(ctx context.Context, f store.EventFilter) ([]store.Event, string, error)
	CountEvents(ctx context.Context, f store.EventFilter) (int64, error)
}

// BulkSuppressions checks, adds and removes many addresses at once.
// Add and Delete return store.ErrBadFilter for invalid input.
type BulkSuppressions interface {
	CheckSuppressions(ctx context.Context, emails []string, scope string) (map[string]store.Suppression, error)
	AddSuppressions(ctx context.Context, items []store.NewSuppression, actor, source string) ([]store.AddResult, error)
	DeleteSuppressions(ctx context.Context, f store.SuppressionFilter, actor, note string) (int, error)
}

// SuppressionExporter streams, counts and imports whole lists. Each
// returns store.ErrBadCursor or store.ErrBadFilter for bad filters.
type SuppressionExporter interface {
	EachSuppression(ctx context.Context, f store.SuppressionFilter, fn func(store.Suppression) error) error
	CountSuppressions(ctx context.Context, f store.SuppressionFilter) (int, error)
	ImportSuppressions(ctx context.Context, src store.SuppressionSource, actor string) (store.ImportResult, error)
}

// RecipientStore reads and resets per-address state; both return
// store.ErrNotFound for an address never seen.
type RecipientStore interface {
	GetTenantRecipient(ctx context.Context, tenant, email string) (store.Recipient, error)
	ResetRecipient(ctx context.Context, tenant, email, actor, note string) (store.Recipient, error)
}

// StatsStore counts events and records sent volume and sent messages;
// Stats and SenderHealth return store.ErrBadStats for a malformed query.
type StatsStore interface {
	Stats(ctx context.Context, q store.StatsQuery) ([]store.StatsRow, error)
	SenderHealth(ctx context.Context, q store.SenderHealthQuery) (store.SenderHealth, error)
	RecordSent(ctx context.Context, tenant, reportID string, counts []store.SentCount) (bool, error)
	RecordSentMessages(ctx context.Context, tenant string, msgs []store.SentMessage) error
}

// PolicyStore reads and replaces the suppression policy. Put returns a
// *store.PolicyError for an invalid policy and store.ErrVersionMismatch
// when the caller edited another version than the stored one.
type PolicyStore interface {
	GetPolicy(ctx context.Context) (store.Policy, error)
	PutPolicy(ctx context.Context, p store.Policy, actor string) (store.Policy, error)
}

// KeyStore authenticates API keys. AuthenticateAPIKey returns
// store.ErrNotFound for an unknown or revoked token.
type KeyStore interface {
	AuthenticateAPIKey(ctx context.Context, token string) (store.APIKey, error)
	AnyAPIKeys(ctx context.Context) (bool, error)
	TouchAPIKey(ctx context.Context, id int64) error
}

// QuarantineLister lists the mail that mailboxes set aside after failing
// to record it; it returns store.ErrBadCursor for a cursor it did not
// issue.
type QuarantineLister interface {
	ListQuarantinedMail(ctx context.Context, cursor string, limit int) ([]store.QuarantinedMail, string, error)
	CountQuarantinedMail(ctx context.Context) (int64, error)
}

// SubscriptionStore keeps outbound webhook subscriptions and their
// deliveries. Get, Update, Delete, GetDelivery and ReplayDelivery return
// store.ErrNotFound; Create store.ErrTooManySubscriptions past the cap;
// ReplayDelivery store.ErrChangeGone when the change is no longer kept.
type SubscriptionStore interface {
	CreateSubscription(ctx context.Context, n store.NewSubscription) (store.Subscription, error)
	GetSubscription(ctx context.Context, id int64) (store.Subscription, error)
	ListSubscriptions(ctx context.Context, tenant string, only bool) ([]store.Subscription, error)
	UpdateSubscription(ctx context.Context, id int64, p store.SubscriptionPatch, actor string) (store.Subscription, error)
	DeleteSubscription(ctx context.Context, id int64) error
	ListDeliveries(ctx context.Context, subscriptionID int64, f store.DeliveryFilter) ([]store.Delivery, string, error)
	CountDeliveries(ctx context.Context, subscriptionID int64, state store.DeliveryState) (int64, error)
	GetDelivery(ctx context.Context, subscriptionID, id int64) (store.Delivery, error)
	ReplayDelivery(ctx context.Context, subscriptionID, id int64) (store.Delivery, error)
}

// ChangeReader reads the feed of changes of the suppression lists, for
// GET /v1/stream. ChangePosition returns store.ErrChangeGone for a change
// the retention deleted and store.ErrNotFound for an id never issued.
type ChangeReader interface {
	ChangesHead(ctx context.Context) (store.Position, error)
	ChangePosition(ctx context.Context, id int64) (store.Position, error)
	ReadChanges(ctx context.Context, pos store.Position, f store.ChangeFilter, limit int) (store.ChangePage, error)
	ChangesWritten() <-chan struct{}
}

// Pinger checks the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// HealthChecker is a component /readyz asks besides the database, such
// as a mailbox ingester. CheckHealth returns nil when the component is
// healthy, else an error whose text says which component and since when
// (it is shown to the caller).
type HealthChecker interface {
	CheckHealth(ctx context.Context) error
}

var (
	_ MessageReader       = (*store.DB)(nil)
	_ SuppressionStore    = (*store.DB)(nil)
	_ EventLister         = (*store.DB)(nil)
	_ Pinger              = (*store.DB)(nil)
	_ BulkSuppressions    = (*store.DB)(nil)
	_ SuppressionExporter = (*store.DB)(nil)
	_ RecipientStore      = (*store.DB)(nil)
	_ StatsStore          = (*store.DB)(nil)
	_ PolicyStore         = (*store.DB)(nil)
	_ KeyStore            = (*store.DB)(nil)
	_ QuarantineLister    = (*store.DB)(nil)
	_ SubscriptionStore   = (*store.DB)(nil)
	_ ChangeReader        = (*store.DB)(nil)
)

// Deps are what the server calls.
type Deps struct {
	Ingester     MessageIngester
	Webhooks     WebhookReceiver // nil: every webhook route answers 404
	Messages     MessageReader
	Suppressions SuppressionStore
	Events       EventLister
	Bulk         BulkSuppressions
	Exporter     SuppressionExporter
	Recipients   RecipientStore
	Stats        StatsStore
	Policy       PolicyStore
	Keys         KeyStore         // nil: no stored keys (only Options.AdminKey)
	Quarantine   QuarantineLister // nil: nothing is ever quarantined
	// Subscriptions keeps outbound webhook subscriptions; Changes is the
	// feed GET /v1/stream serves. nil: those routes answer 404.
	Subscriptions SubscriptionStore
	Changes       ChangeReader
	DB            Pinger
	Health        []HealthChecker
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	Gatherer      prometheus.Gatherer
	NowFunc       func() time.Time
}

// Defaults for Options.
const (
	MaxBodyBytesDefault        = 10 << 20
	MaxImportBytesDefault      = 1 << 30
	WebhookMaxBodyBytesDefault = 5 << 20
	StreamMaxDefault           = 100
	StreamHeartbeatDefault     = 15 * time.Second
	StreamMaxDurationDefault   = time.Hour
)

// Options tune the server.
type Options struct {
	MaxBodyBytes int64
	// MaxImportBytes caps a CSV import, which is streamed, not buffered.
	MaxImportBytes int64
	// Auth says when keys are required; AuthAuto when empty.
	Auth AuthMode
	// Exposed says the server listens beyond loopback: AuthAuto then
	// requires keys from the start, whether any exists or not.
	Exposed bool
	// AdminKey is an admin token accepted besides the stored keys (from
	// the configuration, to create the first keys over the API or CLI).
	AdminKey string
	// RateLimit is each key's default rate in requests per second, with
	// bursts of RateBurst (0: unlimited). A key's own limit wins.
	RateLimit float64
	RateBurst int
	// WebhookMaxBodyBytes caps webhook bodies.
	WebhookMaxBodyBytes int64
	// WebhookRoutes are the webhook providers' routes (the webhook
	// package's registry); a provider the receiver has no credentials for
	// answers 404 on its route.
	WebhookRoutes []WebhookRoute
	// OutboundAllowPrivate lets subscriptions name loopback, private and
	// other non-public destinations (for a receiver on the same host or
	// network).
	OutboundAllowPrivate bool
	// StreamMax caps the GET /v1/stream connections open at once (more
	// answer 503); StreamHeartbeat is how often an idle stream sends a
	// comment, StreamMaxDuration how long one stays open before the
	// server ends it (the client resumes with Last-Event-ID).
	StreamMax         int
	StreamHeartbeat   time.Duration
	StreamMaxDuration time.Duration
}

// WebhookRoute is one provider's route: POST /v1/webhooks/{Provider}, and
// HEAD when Probe is set (for providers that check the URL first).
type WebhookRoute struct {
	Provider string
	Probe    bool
}

// Server is the HTTP API.
type Server struct {
	deps      Deps
	logger    *slog.Logger
	maxBody   int64
	maxImport int64
	auth      *authenticator
	now       func() time.Time
	router    chi.Router
	duration  *prometheus.HistogramVec
	inFlight  prometheus.Gauge

	// webhookMaxBody caps webhook bodies; webhooks holds the configured
	// providers, webhookRoutes every provider's route.
	webhookMaxBody int64
	webhooks       map[string]bool
	webhookRoutes  []WebhookRoute

	outboundAllowPrivate bool
	// streams holds a token per open stream; closing ends them all (at
	// shutdown).
	streams           chan struct{}
	closing           chan struct{}
	closeOnce         sync.Once
	streamHeartbeat   time.Duration
	streamMaxDuration time.Duration
}

// route is one entry of the route table.
type route struct {
	method, pattern string
	handle          func(w http.ResponseWriter, r *http.Request) error
}

func (s *Server) routes() []route {
	routes := []route{
		{"GET", "/healthz", s.healthz},
		{"GET", "/readyz", s.readyz},
		{"GET", "/metrics", s.metrics},
		{"POST", "/v1/messages", s.postMessage},
		{"GET", "/v1/messages/{id}", s.getMessage},
		{"GET", "/v1/messages/{id}/raw", s.getMessageRaw},
		{"GET", "/v1/suppressions", s.listSuppressions},
		{"POST", "/v1/suppressions", s.addSuppressions},
		{"DELETE", "/v1/suppressions", s.deleteSuppressions},
		{"POST", "/v1/suppressions/check", s.checkSuppressions},
		{"POST", "/v1/suppressions/import", s.importSuppressions},
		{"GET", "/v1/suppressions/{email}", s.getSuppression},
		{"DELETE", "/v1/suppressions/{email}", s.deleteSuppression},
		{"GET", "/v1/events", s.listEvents},
		{"GET", "/v1/quarantine", s.listQuarantine},
		{"GET", "/v1/recipients/{email}", s.getRecipient},
		{"POST", "/v1/recipients/{email}/reset", s.resetRecipient},
		{"GET", "/v1/stats", s.getStats},
		{"GET", "/v1/sender-health", s.getSenderHealth},
		{"POST", "/v1/sent", s.postSent},
		{"GET", "/v1/policy", s.getPolicy},
		{"PUT", "/v1/policy", s.putPolicy},
		{"PATCH", "/v1/policy", s.patchPolicy},
		{"GET", "/v1/codes", s.listCodes},
		{"GET", "/v1/codes/{code}", s.getCode},
		{"GET", "/v1/stream", s.stream},
		{"GET", "/v1/subscriptions", s.listSubscriptions},
		{"POST", "/v1/subscriptions", s.createSubscription},
		{"GET", "/v1/subscriptions/{id}", s.getSubscription},
		{"PATCH", "/v1/subscriptions/{id}", s.updateSubscription},
		{"DELETE", "/v1/subscriptions/{id}", s.deleteSubscription},
		{"GET", "/v1/subscriptions/{id}/deliveries", s.listDeliveries},
		{"GET", "/v1/subscriptions/{id}/deliveries/{delivery}", s.getDelivery},
		{"POST", "/v1/subscriptions/{id}/deliveries/{delivery}/replay", s.replayDelivery},
	}
	for _, w := range s.webhookRoutes {
		routes = append(routes, route{"POST", "/v1/webhooks/" + w.Provider, s.receiveWebhook(w.Provider)})
		if w.Probe {
			routes = append(routes, route{"HEAD", "/v1/webhooks/" + w.Provider, s.probeWebhook(w.Provider)})
		}
	}
	return routes
}

// New returns a server ready to serve.
func New(deps Deps, opts Options) (*Server, error) {
	s := &Server{deps: deps, logger: deps.Logger, maxBody: opts.MaxBodyBytes, maxImport: opts.MaxImportBytes, now: deps.NowFunc,
		webhookMaxBody: cmp.Or(max(opts.WebhookMaxBodyBytes, 0), WebhookMaxBodyBytesDefault), webhooks: map[string]bool{},
		webhookRoutes: opts.WebhookRoutes, outboundAllowPrivate: opts.OutboundAllowPrivate,
		streams:         make(chan struct{}, cmp.Or(max(opts.StreamMax, 0), StreamMaxDefault)),
		closing:         make(chan struct{}),
		streamHeartbeat: cmp.Or(max(opts.StreamHeartbeat, 0), StreamHeartbeatDefault), streamMaxDuration: cmp.Or(max(opts.StreamMaxDuration, 0), StreamMaxDurationDefault)}
	if deps.Webhooks != nil {
		for _, p := range deps.Webhooks.Configured() {
			s.webhooks[p] = true
		}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.logger = s.logger.With("component", "api")
	if s.maxBody <= 0 {
		s.maxBody = MaxBodyBytesDefault
	}
	if s.maxImport <= 0 {
		s.maxImport = MaxImportBytesDefault
	}
	s.auth = &authenticator{mode: cmp.Or(opts.Auth, AuthAuto), keys: deps.Keys, rate: opts.RateLimit,
		burst: opts.RateBurst, limiters: map[int64]*rate.Limiter{}, clients: map[string]*rate.Limiter{}}
	switch s.auth.mode {
	case AuthAuto, AuthOn, AuthOff:
	default:
		return nil, fmt.Errorf("api: auth mode %q is not auto, on or off", opts.Auth)
	}
	if opts.AdminKey != "" {
		sum := store.HashToken(opts.AdminKey)
		s.auth.adminHash = sum[:]
	}
	s.auth.exposed = opts.Exposed
	// Decided once, here, except that loopback auto mode tightens when it
	// first sees a key: a request never finds the API looser than before.
	s.auth.required.Store(s.auth.mode == AuthOn || s.auth.mode == AuthAuto && (opts.Exposed || s.auth.adminHash != nil))
	if s.now == nil {
		s.now = time.Now
	}
	if s.deps.Gatherer == nil {
		s.deps.Gatherer = prometheus.NewRegistry()
	}
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "bounced", Subsystem: "http", Name: "request_duration_seconds",
		Help:    "HTTP request latency by route pattern, method and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method", "code"})
	s.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "bounced", Subsystem: "http", Name: "requests_in_flight",
		Help: "HTTP requests being served.",
	})
	authFailures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "bounced", Subsystem: "http", Name: "auth_refused_total",
		Help: "Requests refused before their handler: missing or unknown key, over the key's rate, or a client over its failed authentications.",
	}, []string{"reason"})
	s.auth.failures = func(reason string) { authFailures.WithLabelValues(reason).Inc() }
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{s.duration, s.inFlight, authFailures} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	r := chi.NewRouter()
	// GetHead answers HEAD on every GET route (the server drops the body).
	r.Use(middleware.RequestID, s.recoverer, s.instrument, s.checkQuery, middleware.GetHead)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, ErrNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, ErrMethodNotAllowed) })
	for _, rt := range s.routes() {
		handle := rt.handle
		if names, ok := queryParams[rt.method+" "+rt.pattern]; ok {
			handle = knownParams(names, handle)
		}
		r.Method(rt.method, rt.pattern, s.authorize(accessFor(rt.method, rt.pattern), s.handler(handle)))
	}
	s.router = r
	return s, nil
}

// CloseStreams ends every open GET /v1/stream, and any opened later: call
// it when the HTTP server shuts down (http.Server.RegisterOnShutdown), as
// Shutdown waits for handlers and a stream never ends by itself soon.
func (s *Server) CloseStreams() { s.closeOnce.Do(func() { close(s.closing) }) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Router exposes the chi router, so tests can walk the route table.
func (s *Server) Router() chi.Routes { return s.router }

func (s *Server) handler(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// instrument records latency by route pattern (never the raw path, which
// holds addresses).
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.inFlight.Inc()
		defer s.inFlight.Dec()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		pattern := chi.RouteContext(r.Context()).RoutePattern()
		if pattern == "" {
			pattern = "unmatched"
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		s.duration.WithLabelValues(pattern, r.Method, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
	})
}

// checkQuery refuses query parameters holding a NUL byte or invalid
// UTF-8 before any handler sees them: no text column can store them, and
// the database would answer with an error, not the client's mistake.
func (s *Server) checkQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for name, values := range r.URL.Query() {
			for _, v := range append(values, name) {
				if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
					s.writeError(w, r, badRequest(strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", ""), ""),
						"query parameters must be UTF-8 text without NUL bytes"))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged generic 500 problem.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(r.Context(), "panic serving request", "panic", v, "route", routePattern(r))
				writeProblem(w, problem{Type: "about:blank", Title: "Internal server error", Status: http.StatusInternalServerError})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.DB.Ping(ctx); err != nil {
		return err
	}
	for _, h := range s.deps.Health {
		if err := h.CheckHealth(ctx); err != nil {
			return &NotReadyError{Detail: err.Error()}
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	promhttp.HandlerFor(s.deps.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}
