package api

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/bounced/bounced/internal/store"
)

// Errors raised by handlers. Only this file maps errors to HTTP status.
var (
	ErrNotFound             = errors.New("api: not found")
	ErrUnsupportedMediaType = errors.New("api: unsupported media type")
	ErrBodyTooLarge         = errors.New("api: request body too large")
	ErrMethodNotAllowed     = errors.New("api: method not allowed")
	ErrWebhookNotConfigured = errors.New("api: webhook provider not configured")
	// ErrPreconditionRequired is an edit that says not which version it
	// edits (no If-Match, no version).
	ErrPreconditionRequired = errors.New("api: precondition required")
)

// PreconditionFailedError is an edit of a version that is no longer the
// stored one; Param names what carried it (If-Match or version).
type PreconditionFailedError struct{ Param string }

func (e *PreconditionFailedError) Error() string { return "api: precondition failed: " + e.Param }

// MissingFieldsError is a document that lacks required fields.
type MissingFieldsError struct{ Fields []string }

func (e *MissingFieldsError) Error() string {
	return "api: missing fields: " + strings.Join(e.Fields, ", ")
}

// unsupportedMediaType is the MediaTypeError of a route that takes the
// accepted media types.
func unsupportedMediaType(accepted ...string) error {
	return &MediaTypeError{Detail: "send the body with Content-Type: " + strings.Join(accepted, " or ")}
}

// webhookRefusal is how a WebhookReceiver's refusals are recognised: the
// receiver lives in a package api must not import, so the contract is a
// method, as net.Error's Timeout is. Error() is safe to show the sender.
type webhookRefusal interface {
	error
	Unauthenticated() bool
}

// MediaTypeError is a body of a type the route does not take; Detail
// says what to send instead. It is an ErrUnsupportedMediaType.
type MediaTypeError struct{ Detail string }

func (e *MediaTypeError) Error() string { return "api: unsupported media type: " + e.Detail }

// Is makes a MediaTypeError match ErrUnsupportedMediaType.
func (e *MediaTypeError) Is(target error) bool { return target == ErrUnsupportedMediaType }

// BadRequestError is a request the client must fix; Detail says how.
type BadRequestError struct {
	Param  string
	Detail string
}

func (e *BadRequestError) Error() string { return "api: bad request: " + e.Detail }

func badRequest(param, format string, args ...any) error {
	return &BadRequestError{Param: param, Detail: fmt.Sprintf(format, args...)}
}

// UnparsableError is a message stored but not readable as mail.
type UnparsableError struct {
	RawID  int64
	Detail string
}

func (e *UnparsableError) Error() string { return "api: unparsable message: " + e.Detail }

// TooManyItemsError is a bulk request over its item limit.
type TooManyItemsError struct {
	Param string
	Limit int
}

func (e *TooManyItemsError) Error() string { return fmt.Sprintf("api: more than %d items", e.Limit) }

// NotReadyError is a component (a mailbox) that has been failing: the
// service is up but not doing all its work. Detail names the component.
type NotReadyError struct {
	Detail string
}

func (e *NotReadyError) Error() string { return "api: not ready: " + e.Detail }

// ErrTooManyStreams means every stream this server serves is open.
var ErrTooManyStreams = errors.New("api: too many streams")

// problem is an RFC 9457 problem details object.
type problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Extension members.
	Param string `json:"param,omitempty"`
	RawID int64  `json:"raw_id,omitempty"`
	// Fields lists every missing field of a 422.
	Fields []string `json:"fields,omitempty"`
}

func problemType(slug string) string { return "urn:bounced:problem:" + slug }

// writeError answers with the problem for err. A 5xx gets a generic body
// and is logged here, once.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problem{Instance: r.URL.Path}
	var bad *BadRequestError
	var unparsable *UnparsableError
	var maxBytes *http.MaxBytesError
	var forbidden *ForbiddenError
	var limited *RateLimitedError
	var tooMany *TooManyItemsError
	var policyErr *store.PolicyError
	var notReady *NotReadyError
	var precondition *PreconditionFailedError
	var missing *MissingFieldsError
	var refusal webhookRefusal
	switch {
	case errors.Is(err, ErrUnauthenticated), errors.Is(err, ErrBadKey):
		p.Status, p.Type, p.Title = http.StatusUnauthorized, problemType("unauthorized"), "Unauthorized"
		p.Detail = "send an API key as Authorization: Bearer <token>"
		if errors.Is(err, ErrBadKey) {
			p.Detail = "the API key is unknown or revoked"
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="bounced"`)
	case errors.As(err, &forbidden):
		p.Status, p.Type, p.Title, p.Detail = http.StatusForbidden, problemType("forbidden"), "Forbidden", forbidden.Detail
	case errors.Is(err, store.ErrForbiddenScope):
		p.Status, p.Type, p.Title = http.StatusForbidden, problemType("forbidden"), "Forbidden"
		p.Detail = "this key is bound to a tenant; that scope or tenant is not its own"
	case errors.As(err, &limited):
		p.Status, p.Type, p.Title = http.StatusTooManyRequests, problemType("rate-limited"), "Too many requests"
		p.Detail = cmp.Or(limited.Detail, "this key is over its request rate; retry after Retry-After seconds")
		w.Header().Set("Retry-After", retryAfterSeconds(limited.RetryAfter))
	case errors.As(err, &tooMany):
		p.Status, p.Type, p.Title, p.Param = http.StatusRequestEntityTooLarge, problemType("too-many-items"), "Too many items", tooMany.Param
		p.Detail = fmt.Sprintf("at most %d items per request; split the request", tooMany.Limit)
	case errors.As(err, &policyErr):
		p.Status, p.Type, p.Title, p.Detail, p.Param = http.StatusBadRequest, problemType("bad-request"), "Bad request", policyErr.Detail, policyErr.Field
	case errors.As(err, &precondition), errors.Is(err, store.ErrVersionMismatch):
		p.Status, p.Type, p.Title = http.StatusPreconditionFailed, problemType("version-mismatch"), "Version mismatch"
		p.Detail, p.Param = "the policy changed since you read it; GET it again and reapply your change", "version"
		if precondition != nil {
			p.Param = precondition.Param
		}
	case errors.Is(err, ErrPreconditionRequired):
		p.Status, p.Type, p.Title = http.StatusPreconditionRequired, problemType("precondition-required"), "Precondition required"
		p.Detail, p.Param = "send If-Match with the ETag GET answered (or the version you read in the body), so that an edit never overwrites another unseen", "If-Match"
	case errors.As(err, &missing):
		p.Status, p.Type, p.Title = http.StatusUnprocessableEntity, problemType("missing-fields"), "Missing fields"
		p.Detail = "PUT replaces the whole document: send every field (missing: " + strings.Join(missing.Fields, ", ") +
			"), or PATCH with application/merge-patch+json to change some"
		p.Param, p.Fields = missing.Fields[0], missing.Fields
	case errors.Is(err, store.ErrBadFilter), errors.Is(err, store.ErrBadStats), errors.Is(err, store.ErrBadScope):
		p.Status, p.Type, p.Title, p.Detail = http.StatusBadRequest, problemType("bad-request"), "Bad request", storeDetail(err)
	case errors.As(err, &bad):
		p.Status, p.Type, p.Title, p.Detail, p.Param = http.StatusBadRequest, problemType("bad-request"), "Bad request", bad.Detail, bad.Param
	case errors.Is(err, store.ErrBadCursor):
		p.Status, p.Type, p.Title, p.Detail, p.Param = http.StatusBadRequest, problemType("bad-request"), "Bad request", "cursor is not one this server issued", "cursor"
	case errors.As(err, &unparsable):
		p.Status, p.Type, p.Title = http.StatusUnprocessableEntity, problemType("unparsable-message"), "Message could not be parsed"
		p.Detail, p.RawID = unparsable.Detail+"; the raw message is stored", unparsable.RawID
	case errors.As(err, &refusal) && refusal.Unauthenticated():
		p.Status, p.Type, p.Title, p.Detail = http.StatusUnauthorized, problemType("webhook-unauthenticated"), "Webhook not authenticated", refusal.Error()
		w.Header().Set("WWW-Authenticate", `Basic realm="bounced webhooks", charset="UTF-8"`)
	case errors.As(err, &refusal):
		p.Status, p.Type, p.Title, p.Detail = http.StatusBadRequest, problemType("bad-request"), "Malformed webhook", refusal.Error()
	case errors.Is(err, ErrWebhookNotConfigured):
		p.Status, p.Type, p.Title = http.StatusNotFound, problemType("not-found"), "Not found"
		p.Detail = "this server has no credentials for this provider's webhooks"
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		p.Status, p.Type, p.Title = http.StatusNotFound, problemType("not-found"), "Not found"
	case errors.Is(err, ErrMethodNotAllowed):
		p.Status, p.Type, p.Title = http.StatusMethodNotAllowed, problemType("method-not-allowed"), "Method not allowed"
	case errors.Is(err, store.ErrChangeGone):
		p.Status, p.Type, p.Title = http.StatusGone, problemType("change-gone"), "Change no longer kept"
		p.Detail = "that change is older than the retention of changes and was deleted, with maybe others after it; start again from the suppression list"
	case errors.Is(err, store.ErrTooManySubscriptions):
		p.Status, p.Type, p.Title = http.StatusConflict, problemType("too-many-subscriptions"), "Too many subscriptions"
		p.Detail = fmt.Sprintf("at most %d subscriptions; delete one first", store.SubscriptionsMax)
	case errors.Is(err, ErrTooManyStreams):
		p.Status, p.Type, p.Title = http.StatusServiceUnavailable, problemType("too-many-streams"), "Too many streams"
		p.Detail = "this server has as many streams open as it serves; retry later"
		w.Header().Set("Retry-After", "30")
	case errors.Is(err, store.ErrConflict):
		p.Status, p.Type, p.Title = http.StatusConflict, problemType("conflict"), "Conflict"
	case errors.Is(err, ErrUnsupportedMediaType):
		p.Status, p.Type, p.Title = http.StatusUnsupportedMediaType, problemType("unsupported-media-type"), "Unsupported media type"
		p.Detail = "this route takes another Content-Type"
		if mt := (*MediaTypeError)(nil); errors.As(err, &mt) {
			p.Detail = mt.Detail
		}
	case errors.Is(err, ErrBodyTooLarge), errors.As(err, &maxBytes):
		p.Status, p.Type, p.Title = http.StatusRequestEntityTooLarge, problemType("too-large"), "Request body too large"
		limit := s.maxBody
		if maxBytes != nil {
			limit = maxBytes.Limit
		}
		p.Detail = fmt.Sprintf("the limit is %d bytes", limit)
	case errors.Is(err, store.ErrUnavailable):
		p.Status, p.Type, p.Title = http.StatusServiceUnavailable, problemType("unavailable"), "Service unavailable"
		p.Detail = "the database is unavailable; retry later"
		w.Header().Set("Retry-After", "5")
		s.logger.WarnContext(r.Context(), "database unavailable", "error", err, slog.Group("request", "method", r.Method, "route", routePattern(r)))
	case errors.As(err, &notReady):
		// Not logged: the failing component logs its own errors, and
		// probes ask every few seconds.
		p.Status, p.Type, p.Title, p.Detail = http.StatusServiceUnavailable, problemType("not-ready"), "Not ready", notReady.Detail
		w.Header().Set("Retry-After", "30")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away; nobody is listening
	default:
		p.Status, p.Type, p.Title = http.StatusInternalServerError, "about:blank", "Internal server error"
		s.logger.ErrorContext(r.Context(), "request failed", "error", err, slog.Group("request", "method", r.Method, "route", routePattern(r)))
	}
	writeProblem(w, p)
}

// routePattern is the route r matched ("/v1/suppressions/{email}"), for
// logs: the path itself can hold an address.
func routePattern(r *http.Request) string {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		if p := rctx.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// storeDetail is a store error's message without the package prefix.
func storeDetail(err error) string {
	return strings.TrimPrefix(err.Error(), "store: ")
}

func writeProblem(w http.ResponseWriter, p problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
