package api

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// importErrorsMax caps the row errors an import reports (all are counted).
const importErrorsMax = 100

type importError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

type importResponse struct {
	store.ImportResult
	Invalid int           `json:"invalid"`
	Errors  []importError `json:"errors"`
}

// csvRows reads an import file lazily for store.ImportSuppressions,
// skipping (and reporting) bad rows. The header names the columns:
// email (required), scope, reason, note, expires_at. A file whose first
// line is an address has no header: one address per line.
type csvRows struct {
	r        *csv.Reader
	p        principal
	now      time.Time
	defaults store.NewSuppression
	cols     map[string]int
	pending  []string // a first line that was data, not a header
	invalid  int
	errs     []importError
	err      error
}

func newCSVRows(body io.Reader, p principal, now time.Time, defaults store.NewSuppression) (*csvRows, error) {
	cr := csv.NewReader(newCSVLimiter(body))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = false
	c := &csvRows{r: cr, p: p, now: now, defaults: defaults}
	head, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, badRequest("body", "the CSV file is empty")
	}
	var bad *BadRequestError
	if errors.As(err, &bad) {
		return nil, err
	}
	if err != nil {
		return nil, badRequest("body", "the CSV header cannot be read: %v", err)
	}
	if len(head) > 0 {
		head[0] = strings.TrimPrefix(head[0], "\ufeff") // a byte order mark from spreadsheets
	}
	if len(head) >= 1 && strings.Contains(head[0], "@") {
		c.cols = map[string]int{"email": 0}
		c.pending = head
		return c, nil
	}
	c.cols = map[string]int{}
	for i, h := range head {
		name := strings.ToLower(strings.TrimSpace(h))
		switch name {
		case "email", "scope", "reason", "note", "expires_at":
			c.cols[name] = i
		}
	}
	if _, ok := c.cols["email"]; !ok {
		return nil, badRequest("body", "the CSV header has no email column (columns: email, scope, reason, note, expires_at)")
	}
	return c, nil
}

// field is a column's value, with the apostrophe an export put before a
// formula-like value taken off again.
func (c *csvRows) field(rec []string, name string) string {
	i, ok := c.cols[name]
	if !ok || i >= len(rec) {
		return ""
	}
	return csvValue(strings.TrimSpace(rec[i]))
}

func (c *csvRows) bad(line int, format string, args ...any) {
	c.invalid++
	if len(c.errs) < importErrorsMax {
		c.errs = append(c.errs, importError{Line: line, Error: fmt.Sprintf(format, args...)})
	}
}

// Next implements store.SuppressionSource.
func (c *csvRows) Next() (store.NewSuppression, bool) {
	for {
		var rec []string
		var err error
		if c.pending != nil {
			rec, c.pending = c.pending, nil
		} else {
			rec, err = c.r.Read()
		}
		var perr *csv.ParseError
		switch {
		case errors.Is(err, io.EOF):
			return store.NewSuppression{}, false
		case errors.As(err, &perr):
			c.bad(perr.Line, "%v", perr.Err)
			continue
		case err != nil:
			c.err = err
			return store.NewSuppression{}, false
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // blank line
		}
		line, _ := c.r.FieldPos(0)
		raw := c.field(rec, "email")
		addr, aerr := parse.NormalizeAddress(raw)
		if aerr != nil {
			c.bad(line, "%s is not a mail address", quoteValue(raw))
			continue
		}
		s := c.defaults
		s.Email = addr
		if v := c.field(rec, "reason"); v != "" {
			s.Reason = parse.Reason(v)
			if !store.ManualReason(s.Reason) {
				c.bad(line, "reason %s is not manual, unsubscribe or import", quoteValue(v))
				continue
			}
		}
		if v := c.field(rec, "scope"); v != "" {
			scope, err := c.p.qualify(v)
			if err != nil {
				c.bad(line, "scope %s: %v", quoteValue(v), err)
				continue
			}
			s.Scope = scope
		}
		if v := c.field(rec, "note"); v != "" {
			if len(v) > 1000 {
				c.bad(line, "note is longer than 1000 characters")
				continue
			}
			s.Note = v
		}
		if v := c.field(rec, "expires_at"); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil || !t.After(c.now) {
				c.bad(line, "expires_at %s is not a future RFC 3339 time", quoteValue(v))
				continue
			}
			s.ExpiresAt = &t
		}
		return s, true
	}
}

// Err implements store.SuppressionSource.
func (c *csvRows) Err() error { return c.err }

func (s *Server) importSuppressions(w http.ResponseWriter, r *http.Request) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "text/csv" {
		return unsupportedMediaType("text/csv")
	}
	p := who(r)
	scope, err := s.scope(r)
	if err != nil {
		return err
	}
	note, err := noteParam(r)
	if err != nil {
		return err
	}
	defaults := store.NewSuppression{Scope: scope, Reason: store.ReasonImport, Note: note}
	if v := r.URL.Query().Get("reason"); v != "" {
		defaults.Reason = parse.Reason(v)
		if !store.ManualReason(defaults.Reason) {
			return badRequest("reason", "reason must be manual, unsubscribe or import")
		}
	}
	rows, err := newCSVRows(http.MaxBytesReader(w, r.Body, s.maxImport), p, s.now(), defaults)
	if err != nil {
		return err
	}
	res, err := s.deps.Exporter.ImportSuppressions(r.Context(), rows, p.name)
	if err != nil {
		return err
	}
	if rows.errs == nil {
		rows.errs = []importError{}
	}
	writeJSON(w, http.StatusOK, importResponse{ImportResult: res, Invalid: rows.invalid, Errors: rows.errs})
	return nil
}
