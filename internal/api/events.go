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
	items, next, err := s.deps.Events.ListEvents(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newPage(items, next))
	return nil
}
