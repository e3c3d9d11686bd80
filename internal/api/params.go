package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/bounced/bounced/internal/parse"
)

// page is one page of a list.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func newPage[T any](items []T, next string) page[T] {
	if items == nil {
		items = []T{}
	}
	return page[T]{Items: items, NextCursor: next}
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
