package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/bounced/bounced/internal/store"
)

// AuthMode says when API keys are required.
type AuthMode string

// Auth modes.
const (
	// AuthAuto requires keys when the server is exposed beyond this
	// machine (Options.Exposed) or an admin key is configured, from the
	// start, whether any key exists or not. On loopback it is open while
	// no key exists, for a first run, and requires keys from the moment
	// one appears for as long as the process runs: it tightens, it never
	// loosens, so revoking every key does not open the API.
	AuthAuto AuthMode = "auto"
	AuthOn   AuthMode = "on"  // always require a key
	AuthOff  AuthMode = "off" // never check keys (behind a trusted proxy)
)

// ConfigAdminName is the actor name of the admin key given in the config.
const ConfigAdminName = "config-admin"

// access is what a route asks of the caller.
type access struct {
	public bool           // its own auth (or none): never asks for a key
	scope  store.KeyScope // "" with !public: any valid key
	// global routes act outside any tenant; keys bound to a tenant are
	// refused.
	global bool
}

// accessRules names what each route of the table asks. A route missing
// here needs an admin key, except the webhook routes, which check the
// providers' signatures themselves.
var accessRules = map[string]access{
	"GET /healthz":                      {public: true},
	"GET /readyz":                       {public: true},
	"GET /metrics":                      {public: true},
	"GET /v1/codes":                     {public: true},
	"GET /v1/codes/{code}":              {public: true},
	"POST /v1/messages":                 {scope: store.KeyEventsWrite, global: true},
	"GET /v1/messages/{id}":             {scope: store.KeyEventsRead, global: true},
	"GET /v1/messages/{id}/raw":         {scope: store.KeyEventsRead, global: true},
	"GET /v1/suppressions":              {scope: store.KeySuppressionsRead},
	"POST /v1/suppressions":             {scope: store.KeySuppressionsWrite},
	"DELETE /v1/suppressions":           {scope: store.KeySuppressionsWrite},
	"POST /v1/suppressions/check":       {scope: store.KeySuppressionsRead},
	"POST /v1/suppressions/import":      {scope: store.KeySuppressionsWrite},
	"GET /v1/suppressions/{email}":      {scope: store.KeySuppressionsRead},
	"DELETE /v1/suppressions/{email}":   {scope: store.KeySuppressionsWrite},
	"GET /v1/events":                    {scope: store.KeyEventsRead},
	"GET /v1/quarantine":                {scope: store.KeyEventsRead, global: true},
	"GET /v1/recipients/{email}":        {scope: store.KeyEventsRead},
	"POST /v1/recipients/{email}/reset": {scope: store.KeySuppressionsWrite},
	"GET /v1/stats":                     {scope: store.KeyEventsRead},
	"GET /v1/sender-health":             {scope: store.KeyEventsRead},
	"POST /v1/sent":                     {scope: store.KeyEventsWrite},
	"GET /v1/policy":                    {},
	"PUT /v1/policy":                    {scope: store.KeyPolicyWrite, global: true},
	"PATCH /v1/policy":                  {scope: store.KeyPolicyWrite, global: true},
	// The stream shows a tenant's key its own tenant's changes; the
	// subscriptions (missing here) are for admin keys.
	"GET /v1/stream": {scope: store.KeySuppressionsRead},
}

func accessFor(method, pattern string) access {
	if a, ok := accessRules[method+" "+pattern]; ok {
		return a
	}
	if strings.HasPrefix(pattern, "/v1/webhooks/") {
		return access{public: true}
	}
	return access{scope: store.KeyAdmin, global: true}
}

// principal is who is calling.
type principal struct {
	name   string // the key's name: recorded as the actor of changes
	tenant string // "" for keys not bound to a tenant
	key    *store.APIKey
	open   bool // no key needed: every permission, no tenant
}

func (p principal) has(scope store.KeyScope) bool {
	return p.open || (p.key != nil && p.key.Has(scope))
}

type principalKey struct{}

// who returns the caller of an authorized request.
func who(r *http.Request) principal {
	if p, ok := r.Context().Value(principalKey{}).(principal); ok {
		return p
	}
	return principal{name: "api", open: true}
}

// qualify turns a scope the caller named into the stored scope name,
// inside the caller's tenant.
func (p principal) qualify(scope string) (string, error) {
	q, err := store.QualifyScope(p.tenant, scope)
	if errors.Is(err, store.ErrBadScope) {
		return "", badRequest("scope", "%s", strings.TrimPrefix(err.Error(), "store: bad scope: "))
	}
	return q, err
}

// tenantFilter returns the tenant a request is restricted to: the key's,
// or for a key bound to none the `tenant` parameter (only), if given.
func (p principal) tenantFilter(r *http.Request) (tenant string, only bool, err error) {
	v, given := r.URL.Query().Get("tenant"), r.URL.Query().Has("tenant")
	if given && v != "" && !store.ValidTenant(v) {
		return "", false, badRequest("tenant", "tenant names are 1-63 of a-z 0-9 . _ -")
	}
	if p.tenant != "" {
		if given && v != p.tenant {
			return "", false, store.ErrForbiddenScope
		}
		return p.tenant, true, nil
	}
	return v, given, nil
}

// ForbiddenError means the key may not do this.
type ForbiddenError struct{ Detail string }

func (e *ForbiddenError) Error() string { return "api: forbidden: " + e.Detail }

// RateLimitedError means the key (or the client) is over its rate; retry
// after RetryAfter. Detail, when set, says which rate.
type RateLimitedError struct {
	RetryAfter time.Duration
	Detail     string
}

func (e *RateLimitedError) Error() string { return "api: rate limited" }

// Authentication failures.
var (
	ErrUnauthenticated = errors.New("api: missing API key")
	ErrBadKey          = errors.New("api: unknown or revoked API key")
)

// Failed authentications: each client may fail AuthFailureBurst times,
// then AuthFailureRate times a second. Over that, its requests carrying a
// token are refused with 429 before the token is looked up, so guessing
// keys costs the database nothing.
const (
	AuthFailureRate  = 1.0
	AuthFailureBurst = 20
	// authClientsMax bounds the clients remembered.
	authClientsMax = 10000
)

// authenticator checks keys and rates.
type authenticator struct {
	mode      AuthMode
	keys      KeyStore
	adminHash []byte
	rate      float64
	burst     int
	mu        sync.Mutex
	limiters  map[int64]*rate.Limiter
	failures  func(reason string)
	// clients limits failed authentications by client address.
	clients map[string]*rate.Limiter
	// required says keys are needed (always, in mode on); auto mode sets
	// it at start or when it first sees a key, and never clears it.
	required atomic.Bool
	// exposed is why keys are required from the start.
	exposed bool
	// noKeysLogged is when the log last said that keys are required and
	// none exists (Unix seconds), so it says so once a minute at most.
	noKeysLogged atomic.Int64
}

// clientKey names the client of r for the failure limit: its IP address,
// or its /64 for IPv6, where one client holds many addresses.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if ip.Is4() || ip.Is4In6() {
		return ip.Unmap().String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// overFailing reports whether the client has used up its failed
// authentications; a client that never failed costs nothing here.
func (a *authenticator) overFailing(client string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.clients[client]
	return ok && l.Tokens() < 1
}

// failed counts a failed authentication of the client.
func (a *authenticator) failed(client string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.clients[client]
	if !ok {
		if len(a.clients) >= authClientsMax {
			// Forget the clients that have not failed lately (full
			// buckets); all of them if that is not enough.
			now := time.Now()
			for k, v := range a.clients {
				if v.TokensAt(now) >= AuthFailureBurst {
					delete(a.clients, k)
				}
			}
			if len(a.clients) >= authClientsMax {
				clear(a.clients)
			}
		}
		l = rate.NewLimiter(AuthFailureRate, AuthFailureBurst)
		a.clients[client] = l
	}
	l.Allow()
}

const adminKeyID = -1

func (a *authenticator) limiter(k *store.APIKey) *rate.Limiter {
	r, burst := a.rate, a.burst
	if k.RateLimit != nil {
		r, burst = *k.RateLimit, 0 // the server's burst belongs to the server's rate
	}
	if k.RateBurst != nil {
		burst = *k.RateBurst
	}
	if r <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(r)))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	l, ok := a.limiters[k.ID]
	if !ok || l.Limit() != rate.Limit(r) || l.Burst() != burst {
		l = rate.NewLimiter(rate.Limit(r), burst)
		a.limiters[k.ID] = l
	}
	return l
}

// authorize wraps a route's handler with the checks its access rule asks.
func (s *Server) authorize(acc access, next http.Handler) http.Handler {
	if acc.public {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err == nil {
			err = s.permit(p, acc)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

func (s *Server) authenticate(r *http.Request) (principal, error) {
	a := s.auth
	if a.mode == AuthOff {
		return principal{name: "api", open: true}, nil
	}
	token, hasToken := bearer(r)
	if !hasToken {
		if !a.required.Load() {
			any := false
			if a.keys != nil {
				var err error
				if any, err = a.keys.AnyAPIKeys(r.Context()); err != nil {
					return principal{}, err
				}
			}
			if !any {
				return principal{name: "api", open: true}, nil
			}
			if a.required.CompareAndSwap(false, true) {
				s.logger.InfoContext(r.Context(), "an API key exists: keys are required from now on, also if every key is revoked")
			}
		}
		a.failures("missing")
		s.explainNoKeys(r.Context())
		return principal{}, ErrUnauthenticated
	}
	var k store.APIKey
	sum := store.HashToken(token)
	client := clientKey(r)
	switch {
	case a.adminHash != nil && subtle.ConstantTimeCompare(sum[:], a.adminHash) == 1:
		k = store.APIKey{ID: adminKeyID, Name: ConfigAdminName, Scopes: []store.KeyScope{store.KeyAdmin}}
	case a.overFailing(client):
		a.failures("client_rate_limited")
		return principal{}, &RateLimitedError{RetryAfter: time.Duration(float64(time.Second) / AuthFailureRate),
			Detail: "too many failed authentications from this address; retry after Retry-After seconds"}
	case a.keys == nil:
		a.failed(client)
		a.failures("unknown")
		return principal{}, ErrBadKey
	default:
		var err error
		k, err = a.keys.AuthenticateAPIKey(r.Context(), token)
		if errors.Is(err, store.ErrNotFound) {
			a.failed(client)
			a.failures("unknown")
			s.explainNoKeys(r.Context())
			return principal{}, ErrBadKey
		}
		if err != nil {
			return principal{}, err
		}
		a.required.Store(true) // a key exists: never open again
		if err := a.keys.TouchAPIKey(r.Context(), k.ID); err != nil {
			s.logger.WarnContext(r.Context(), "recording key use", "error", err)
		}
	}
	if l := a.limiter(&k); l != nil {
		res := l.Reserve()
		if d := res.Delay(); d > 0 {
			res.Cancel()
			a.failures("rate_limited")
			return principal{}, &RateLimitedError{RetryAfter: d}
		}
	}
	return principal{name: k.Name, tenant: k.Tenant, key: &k}, nil
}

// explainNoKeys logs, once a minute at most, that keys are required and
// none exists, when that is so: every request is refused then, and the
// operator must learn why from the log.
func (s *Server) explainNoKeys(ctx context.Context) {
	a := s.auth
	if a.adminHash != nil {
		return
	}
	now := time.Now().Unix()
	last := a.noKeysLogged.Load()
	if now-last < 60 || !a.noKeysLogged.CompareAndSwap(last, now) {
		return
	}
	if a.keys != nil {
		if any, err := a.keys.AnyAPIKeys(ctx); err != nil || any {
			return
		}
	}
	why := "BOUNCED_AUTH=on"
	switch {
	case a.mode == AuthAuto && a.exposed:
		why = "the listen address is beyond loopback"
	case a.mode == AuthAuto:
		why = "a key existed since the start of this process"
	}
	s.logger.WarnContext(ctx, "API keys are required ("+why+") and no API key exists: every request that needs one is refused with 401; create one (bounced apikey create) or set BOUNCED_ADMIN_KEY")
}

func (s *Server) permit(p principal, acc access) error {
	if acc.scope != "" && !p.has(acc.scope) {
		return &ForbiddenError{Detail: "this key lacks the " + string(acc.scope) + " scope"}
	}
	if acc.global && p.tenant != "" {
		return &ForbiddenError{Detail: "keys bound to a tenant cannot use this route; it acts on every tenant"}
	}
	return nil
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true // present but unusable: refused as a bad key
	}
	return strings.TrimSpace(token), true
}

func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
