// Package api serves bounced's REST API (described in openapi.yaml), its
// health checks and Prometheus metrics. Errors are RFC 9457 problem
// details; every route is in the one table in routes.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

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

// EventLister lists events; it returns store.ErrBadCursor for a cursor it
// did not issue.
type EventLister interface {
	ListEvents(ctx context.Context, f store.EventFilter) ([]store.Event, string, error)
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
	_ MessageReader    = (*store.DB)(nil)
	_ SuppressionStore = (*store.DB)(nil)
	_ EventLister      = (*store.DB)(nil)
	_ Pinger           = (*store.DB)(nil)
)

// Deps are what the server calls.
type Deps struct {
	Ingester     MessageIngester
	Messages     MessageReader
	Suppressions SuppressionStore
	Events       EventLister
	DB           Pinger
	Health       []HealthChecker
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	Gatherer     prometheus.Gatherer
	NowFunc      func() time.Time
}

// MaxBodyBytesDefault caps request bodies when Options leaves it zero.
const MaxBodyBytesDefault = 10 << 20

// Options tune the server.
type Options struct {
	MaxBodyBytes int64
}

// Server is the HTTP API.
type Server struct {
	deps     Deps
	logger   *slog.Logger
	maxBody  int64
	now      func() time.Time
	router   chi.Router
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// route is one entry of the route table.
type route struct {
	method, pattern string
	handle          func(w http.ResponseWriter, r *http.Request) error
}

func (s *Server) routes() []route {
	return []route{
		{"GET", "/healthz", s.healthz},
		{"GET", "/readyz", s.readyz},
		{"GET", "/metrics", s.metrics},
		{"POST", "/v1/messages", s.postMessage},
		{"GET", "/v1/messages/{id}", s.getMessage},
		{"GET", "/v1/messages/{id}/raw", s.getMessageRaw},
		{"GET", "/v1/suppressions", s.listSuppressions},
		{"GET", "/v1/suppressions/{email}", s.getSuppression},
		{"DELETE", "/v1/suppressions/{email}", s.deleteSuppression},
		{"GET", "/v1/events", s.listEvents},
		{"GET", "/v1/codes", s.listCodes},
		{"GET", "/v1/codes/{code}", s.getCode},
	}
}

// New returns a server ready to serve.
func New(deps Deps, opts Options) (*Server, error) {
	s := &Server{deps: deps, logger: deps.Logger, maxBody: opts.MaxBodyBytes, now: deps.NowFunc}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.logger = s.logger.With("component", "api")
	if s.maxBody <= 0 {
		s.maxBody = MaxBodyBytesDefault
	}
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
	if deps.Registerer != nil {
		for _, c := range []prometheus.Collector{s.duration, s.inFlight} {
			if err := deps.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	r := chi.NewRouter()
	r.Use(middleware.RequestID, s.recoverer, s.instrument)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, ErrNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, ErrMethodNotAllowed) })
	for _, rt := range s.routes() {
		r.Method(rt.method, rt.pattern, s.handler(rt.handle))
	}
	s.router = r
	return s, nil
}

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

// recoverer turns a panic into a logged generic 500 problem.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(r.Context(), "panic serving request", "panic", v, "path", r.URL.Path)
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
