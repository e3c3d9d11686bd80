package api

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/bounced/bounced/internal/parse"
)

// page is one page of a list.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
	// Total counts every item of the list (all pages); only with
	// ?total=true, as it reads every matching row.
	Total *int64 `json:"total,omitempty"`
}

func newPage[T any](items []T, next string) page[T] {
	if items == nil {
		items = []T{}
	}
	return page[T]{Items: items, NextCursor: next}
}

// writePage answers one page of a cursor-paged list, with a Link to the
// next page when there is one.
func writePage[T any](w http.ResponseWriter, r *http.Request, p page[T]) {
	setNextLink(w, r, p.NextCursor)
	writeJSON(w, http.StatusOK, p)
}

// setNextLink sets Link: <...>; rel="next" (RFC 8288) to the request
// with its cursor replaced by next, unless next is empty (the last page).
// The target is relative to the request, so it never depends on a Host
// header the client sent.
func setNextLink(w http.ResponseWriter, r *http.Request, next string) {
	if next == "" {
		return
	}
	q := r.URL.Query()
	q.Set("cursor", next)
	u := url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: q.Encode()}
	w.Header().Add("Link", "<"+u.String()+`>; rel="next"`)
}

// totalParam reads ?total=true|false.
func totalParam(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("total") {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, badRequest("total", "total is true (count every item, which reads each) or false (the default)")
}

// queryParams names the query parameters of each route that checks
// them: lists, and the bulk delete, which takes the listing's filters.
// Any other parameter is refused (400, naming it), so a misspelt filter
// never passes for no filter: ?clas=hard must not list every class, nor
// DELETE ?domian=x remove more than meant. TestQueryParamsMatchSpec keeps
// these and openapi.yaml in step.
var queryParams = map[string][]string{
	"GET /v1/events": {"recipient", "type", "class", "reason", "since", "until", "tenant", "cursor", "limit", "total"},
	"GET /v1/suppressions": {"scope", "tenant", "reason", "class", "source", "domain", "email_prefix", "since", "until",
		"sort", "cursor", "limit", "total"},
	"DELETE /v1/suppressions": {"scope", "tenant", "reason", "class", "source", "domain", "email_prefix", "since", "until",
		"confirm", "note"},
	"GET /v1/quarantine":                    {"cursor", "limit", "total"},
	"GET /v1/recipients/{email}":            {"tenant", "cursor", "limit", "total"},
	"GET /v1/stats":                         {"since", "until", "bucket", "group_by", "groups", "tenant"},
	"GET /v1/sender-health":                 {"since", "until", "bucket", "groups", "examples", "tenant"},
	"GET /v1/codes":                         {},
	"GET /v1/subscriptions":                 {"tenant", "total"},
	"GET /v1/subscriptions/{id}/deliveries": {"state", "cursor", "limit", "total"},
	"GET /v1/stream":                        {"after", "type", "scope", "tenant"},
}

// knownParams refuses a request naming a query parameter not in names.
func knownParams(names []string, h func(http.ResponseWriter, *http.Request) error) func(http.ResponseWriter, *http.Request) error {
	known := make(map[string]bool, len(names))
	for _, n := range names {
		known[n] = true
	}
	takes := "none"
	if len(names) > 0 {
		takes = strings.Join(names, ", ")
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		var unknown []string
		for name := range r.URL.Query() {
			if !known[name] {
				unknown = append(unknown, name)
			}
		}
		if len(unknown) == 0 {
			return h(w, r)
		}
		slices.Sort(unknown)
		var quoted []string
		for i, name := range unknown {
			if i == 10 {
				quoted = append(quoted, fmt.Sprintf("and %d more", len(unknown)-i))
				break
			}
			quoted = append(quoted, quoteValue(name))
		}
		param := unknown[0]
		if len(param) > quoteMax {
			param = strings.ToValidUTF8(param[:quoteMax], "")
		}
		return badRequest(param, "unknown query parameter %s: this route takes %s", strings.Join(quoted, ", "), takes)
	}
}

// emailParam reads and normalises the {email} path parameter.
func emailParam(r *http.Request) (string, error) {
	raw := chi.URLParam(r, "email")
	if unescaped, err := url.PathUnescape(raw); err == nil {
		raw = unescaped
	}
	addr, err := parse.NormalizeAddress(raw)
	if err != nil {
		return "", badRequest("email", "%q is not a mail address", raw)
	}
	return addr, nil
}

func limitParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, badRequest("limit", "limit must be a number from 1 to 1000")
	}
	return n, nil
}

func timeParam(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, badRequest(name, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t, nil
}

func scopeParam(r *http.Request) (string, error) {
	v := r.URL.Query().Get("scope")
	if len(v) > 200 {
		return "", badRequest("scope", "scope is longer than 200 characters")
	}
	return v, nil
}
