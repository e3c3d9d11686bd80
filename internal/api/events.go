package api

import (
	"net/http"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := store.EventFilter{Cursor: q.Get("cursor")}
	var err error
	if f.Limit, err = limitParam(r); err != nil {
		return err
	}
	if f.Tenant, f.OnlyTenant, err = who(r).tenantFilter(r); err != nil {
		return err
	}
	if f.Since, err = timeParam(r, "since"); err != nil {
		return err
	}
	if f.Until, err = timeParam(r, "until"); err != nil {
		return err
	}
	if v := q.Get("recipient"); v != "" {
		if f.Address, err = parse.NormalizeAddress(v); err != nil {
			return badRequest("recipient", "%q is not a mail address", v)
		}
	}
	if v := q.Get("type"); v != "" {
		f.Type = parse.EventType(v)
		if !f.Type.Valid() {
			return badRequest("type", "unknown event type %q", v)
		}
	}
	if v := q.Get("class"); v != "" {
		f.Class = parse.Class(v)
		switch f.Class {
		case parse.ClassHard, parse.ClassSoft, parse.ClassSender, parse.ClassComplaint, parse.ClassNone:
		default:
			return badRequest("class", "class must be hard, soft, sender, complaint or none")
		}
	}
	if v := q.Get("reason"); v != "" {
		f.Reason = parse.Reason(v)
		if !store.ValidSuppressionReason(f.Reason) {
			return badRequest("reason", "unknown reason %s", quoteValue(v))
		}
	}
	total, err := totalParam(r)
	if err != nil {
		return err
	}
	items, next, err := s.deps.Events.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	p := newPage(items, next)
	if total {
		n, err := s.deps.Events.CountEvents(r.Context(), f)
		if err != nil {
			return err
		}
		p.Total = &n
	}
	writePage(w, r, p)
	return nil
}
