package api

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

func (s *Server) getSuppression(w http.ResponseWriter, r *http.Request) error {
	email, err := emailParam(r)
	if err != nil {
		return err
	}
	scope, err := s.scope(r)
	if err != nil {
		return err
	}
	sup, err := s.deps.Suppressions.GetSuppression(r.Context(), email, scope)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sup)
	return nil
}

// scope reads the scope parameter into the caller's namespace.
func (s *Server) scope(r *http.Request) (string, error) {
	v, err := scopeParam(r)
	if err != nil {
		return "", err
	}
	return who(r).qualify(v)
}

// suppressionFilter reads the listing filters shared by GET, the CSV
// export and the bulk DELETE.
func suppressionFilter(r *http.Request) (store.SuppressionFilter, error) {
	q := r.URL.Query()
	p := who(r)
	var f store.SuppressionFilter
	var err error
	if v, _ := scopeParam(r); v != "" {
		if f.Scope, err = p.qualify(v); err != nil {
			return f, err
		}
	} else if _, err := scopeParam(r); err != nil {
		return f, err
	}
	if f.Tenant, f.OnlyTenant, err = p.tenantFilter(r); err != nil {
		return f, err
	}
	if v := q.Get("reason"); v != "" {
		f.Reason = parse.Reason(v)
		if !store.ValidSuppressionReason(f.Reason) {
			return f, badRequest("reason", "unknown reason %q", v)
		}
	}
	if v := q.Get("class"); v != "" {
		f.Class = parse.Class(v)
		switch f.Class {
		case parse.ClassHard, parse.ClassSoft, parse.ClassComplaint, parse.ClassNone:
		default:
			return f, badRequest("class", "class must be hard, soft, complaint or none")
		}
	}
	f.Source = q.Get("source")
	if v := q.Get("domain"); v != "" {
		addr, err := parse.NormalizeAddress("x@" + v)
		if err != nil {
			return f, badRequest("domain", "%q is not a domain", v)
		}
		f.Domain = parse.AddressDomain(addr)
	}
	if v := q.Get("email_prefix"); v != "" {
		if len(v) > 254 {
			return f, badRequest("email_prefix", "email_prefix is longer than 254 characters")
		}
		f.EmailPrefix = v
	}
	if f.Since, err = timeParam(r, "since"); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(r, "until"); err != nil {
		return f, err
	}
	if v := q.Get("sort"); v != "" {
		f.Sort = store.SuppressionSort(v)
		if !f.Sort.Valid() {
			return f, badRequest("sort", "sort must be -created_at, created_at, email or -email")
		}
	}
	return f, nil
}

func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) error {
	f, err := suppressionFilter(r)
	if err != nil {
		return err
	}
	if wantsCSV(r) {
		return s.exportSuppressions(w, r, f)
	}
	if f.Limit, err = limitParam(r); err != nil {
		return err
	}
	total, err := totalParam(r)
	if err != nil {
		return err
	}
	f.Cursor = r.URL.Query().Get("cursor")
	items, next, err := s.deps.Suppressions.ListSuppressions(r.Context(), f)
	if err != nil {
		return err
	}
	p := newPage(items, next)
	if total {
		g := f
		g.Cursor, g.Limit = "", 0
		n, err := s.deps.Exporter.CountSuppressions(r.Context(), g)
		if err != nil {
			return err
		}
		n64 := int64(n)
		p.Total = &n64
	}
	writePage(w, r, p)
	return nil
}

// wantsCSV reports whether the client prefers CSV to JSON.
func wantsCSV(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "text/csv" {
			return true
		}
	}
	return false
}

var csvHeader = []string{"email", "scope", "domain", "reason", "class", "status", "reply_code", "diagnostic", "source",
	"provider", "event_count", "first_seen_at", "last_seen_at", "expires_at", "created_by", "note", "created_at"}

// exportSuppressions streams every entry matching f as CSV, a page at a
// time, so memory stays flat whatever the list's size. Every cell is
// safe to open in a spreadsheet (see csvCell). A failure after the first
// byte can only cut the stream short; it is logged.
func (s *Server) exportSuppressions(w http.ResponseWriter, r *http.Request, f store.SuppressionFilter) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="suppressions.csv"`)
	cw := csv.NewWriter(w)
	started := false
	flusher, _ := w.(http.Flusher)
	n := 0
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	err := s.deps.Exporter.EachSuppression(r.Context(), f, func(e store.Suppression) error {
		if !started {
			w.WriteHeader(http.StatusOK)
			started = true
			if err := cw.Write(csvHeader); err != nil {
				return err
			}
		}
		exp := ""
		if e.ExpiresAt != nil {
			exp = ts(*e.ExpiresAt)
		}
		rec := []string{e.Email, e.Scope, e.Domain, string(e.Reason), string(e.Class), e.Status, e.ReplyCode,
			e.Diagnostic, e.Source, e.Provider, strconv.Itoa(e.EventCount), ts(e.FirstSeenAt), ts(e.LastSeenAt), exp,
			e.CreatedBy, e.Note, ts(e.CreatedAt)}
		for i := range rec {
			rec[i] = csvCell(rec[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			cw.Flush()
			if flusher != nil {
				flusher.Flush()
			}
		}
		return cw.Error()
	})
	if err != nil && started {
		s.logger.WarnContext(r.Context(), "CSV export cut short", "error", err, "rows", n)
		return nil
	}
	if err != nil {
		return err
	}
	if !started {
		w.WriteHeader(http.StatusOK)
		_ = cw.Write(csvHeader)
	}
	cw.Flush()
	return nil
}

func (s *Server) deleteSuppression(w http.ResponseWriter, r *http.Request) error {
	email, err := emailParam(r)
	if err != nil {
		return err
	}
	scope, err := s.scope(r)
	if err != nil {
		return err
	}
	note, err := noteParam(r)
	if err != nil {
		return err
	}
	if _, err := s.deps.Suppressions.DeleteSuppression(r.Context(), email, scope, who(r).name, note); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func noteParam(r *http.Request) (string, error) {
	note := r.URL.Query().Get("note")
	if len(note) > 1000 {
		return "", badRequest("note", "note is longer than 1000 characters")
	}
	return note, nil
}

// bulkDeleteResult is the answer of DELETE /v1/suppressions.
type bulkDeleteResult struct {
	Deleted     int  `json:"deleted"`
	WouldDelete int  `json:"would_delete"`
	DryRun      bool `json:"dry_run"`
}

func (s *Server) deleteSuppressions(w http.ResponseWriter, r *http.Request) error {
	f, err := suppressionFilter(r)
	if err != nil {
		return err
	}
	note, err := noteParam(r)
	if err != nil {
		return err
	}
	g := f
	if who(r).tenant != "" {
		g.Tenant, g.OnlyTenant = "", false // a tenant's key is always restricted; that is no filter
	}
	if g.Empty() {
		return badRequest("scope", "a bulk delete needs at least one filter (scope, reason, class, source, domain, email_prefix, since, until)")
	}
	switch r.URL.Query().Get("confirm") {
	case "true":
	case "", "false":
		// A dry run: how many would go, nothing removed.
		n, err := s.deps.Exporter.CountSuppressions(r.Context(), f)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, bulkDeleteResult{Deleted: 0, WouldDelete: n, DryRun: true})
		return nil
	default:
		return badRequest("confirm", "confirm is true (remove) or false (only count, the default)")
	}
	n, err := s.deps.Bulk.DeleteSuppressions(r.Context(), f, who(r).name, note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, bulkDeleteResult{Deleted: n, WouldDelete: n})
	return nil
}

// decodeJSON reads a JSON body of at most the server's limit into v.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return unsupportedMediaType("application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body", "the body is not valid JSON for this request: %v", err)
	}
	if dec.More() {
		return badRequest("body", "the body holds more than one JSON value")
	}
	return nil
}

type checkRequest struct {
	Emails []string `json:"emails"`
	Scope  string   `json:"scope"`
}

type checkHit struct {
	Input string `json:"input"`
	store.Suppression
}

type checkResponse struct {
	Checked    int        `json:"checked"`
	Suppressed []checkHit `json:"suppressed"`
	Invalid    []string   `json:"invalid"`
}

func (s *Server) checkSuppressions(w http.ResponseWriter, r *http.Request) error {
	var req checkRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if len(req.Emails) > store.CheckMax {
		return &TooManyItemsError{Param: "emails", Limit: store.CheckMax}
	}
	scope, err := who(r).qualify(req.Scope)
	if err != nil {
		return err
	}
	resp := checkResponse{Checked: len(req.Emails), Suppressed: []checkHit{}, Invalid: []string{}}
	valid := make([]string, 0, len(req.Emails))
	inputs := make([]string, 0, len(req.Emails))
	for _, e := range req.Emails {
		addr, err := parse.NormalizeAddress(e)
		if err != nil {
			resp.Invalid = append(resp.Invalid, e)
			continue
		}
		valid, inputs = append(valid, addr), append(inputs, e)
	}
	hits, err := s.deps.Bulk.CheckSuppressions(r.Context(), valid, scope)
	if err != nil {
		return err
	}
	for i, addr := range valid {
		if h, ok := hits[parse.AddressKey(addr)]; ok {
			resp.Suppressed = append(resp.Suppressed, checkHit{Input: inputs[i], Suppression: h})
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// addItem is one address to add by hand.
type addItem struct {
	Email     string       `json:"email"`
	Scope     string       `json:"scope,omitempty"`
	Reason    parse.Reason `json:"reason,omitempty"`
	Note      string       `json:"note,omitempty"`
	ExpiresAt *time.Time   `json:"expires_at,omitempty"`
}

type addRequest struct {
	addItem
	Items []addItem `json:"items"`
}

// addedItem is what became of one item: the entry (added or already
// there), or, for an item of a bulk add that was refused, why.
type addedItem struct {
	Added bool `json:"added"`
	*store.Suppression
	Error *itemError `json:"error,omitempty"`
}

// itemError says why one item of a bulk request was refused: the
// parameter at fault ("items[3].email") and what to fix.
type itemError struct {
	Param  string `json:"param"`
	Detail string `json:"detail"`
}

type addResponse struct {
	Added    int         `json:"added"`
	Existing int         `json:"existing"`
	Failed   int         `json:"failed"`
	Items    []addedItem `json:"items"`
}

// newSuppression validates one item for the caller; prefix names it in
// errors ("items[3]"), empty for a single address.
func (s *Server) newSuppression(p principal, it addItem, prefix string) (store.NewSuppression, error) {
	param := func(field string) string {
		if prefix == "" {
			return field
		}
		return prefix + "." + field
	}
	addr, err := parse.NormalizeAddress(it.Email)
	if err != nil {
		return store.NewSuppression{}, badRequest(param("email"), "%q is not a mail address", it.Email)
	}
	reason := it.Reason
	if reason == "" {
		reason = store.ReasonManual
	}
	if !store.ManualReason(reason) {
		return store.NewSuppression{}, badRequest(param("reason"), "reason must be manual, unsubscribe or import")
	}
	scope, err := p.qualify(it.Scope)
	if err != nil {
		var bad *BadRequestError
		if errors.As(err, &bad) {
			bad.Param = param("scope")
		}
		return store.NewSuppression{}, err
	}
	if len(it.Note) > 1000 {
		return store.NewSuppression{}, badRequest(param("note"), "note is longer than 1000 characters")
	}
	if it.ExpiresAt != nil && !it.ExpiresAt.After(s.now()) {
		return store.NewSuppression{}, badRequest(param("expires_at"), "expires_at is not in the future")
	}
	return store.NewSuppression{Email: addr, Scope: scope, Reason: reason, Note: it.Note, ExpiresAt: it.ExpiresAt}, nil
}

func (s *Server) addSuppressions(w http.ResponseWriter, r *http.Request) error {
	var req addRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	items, param := req.Items, "items"
	switch {
	case req.Email != "" && req.Items != nil:
		return badRequest("body", "send either one address (email, ...) or items, not both")
	case req.Email != "":
		items, param = []addItem{req.addItem}, ""
	case len(req.Items) == 0:
		return badRequest("items", "nothing to add: send email or a non-empty items list")
	case len(req.Items) > store.CheckMax:
		return &TooManyItemsError{Param: "items", Limit: store.CheckMax}
	}
	p := who(r)
	// A bad item of a bulk add is reported in its place and the others
	// are added; a single address that is bad is the request's error.
	out := addResponse{Items: make([]addedItem, len(items))}
	news := make([]store.NewSuppression, 0, len(items))
	at := make([]int, 0, len(items)) // the item of each of news
	for i, it := range items {
		if param == "" {
			ns, err := s.newSuppression(p, it, "")
			if err != nil {
				return err
			}
			news, at = append(news, ns), append(at, i)
			continue
		}
		ns, err := s.newSuppression(p, it, param+"["+strconv.Itoa(i)+"]")
		var bad *BadRequestError
		switch {
		case errors.As(err, &bad):
			out.Items[i] = addedItem{Error: &itemError{Param: bad.Param, Detail: bad.Detail}}
			out.Failed++
		case err != nil:
			return err // a scope the key may not use refuses the request
		default:
			news, at = append(news, ns), append(at, i)
		}
	}
	if len(news) > 0 {
		res, err := s.deps.Bulk.AddSuppressions(r.Context(), news, p.name, "api")
		if err != nil {
			return err
		}
		counted := map[int64]bool{}
		for j, a := range res {
			out.Items[at[j]] = addedItem{Added: a.Added, Suppression: &a.Suppression}
			if counted[a.Suppression.ID] {
				continue
			}
			counted[a.Suppression.ID] = true
			if a.Added {
				out.Added++
			} else {
				out.Existing++
			}
		}
	}
	status := http.StatusOK
	if out.Added > 0 {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
	return nil
}
