package api

import (
	"net/http"

	"github.com/bounced/bounced/internal/store"
)

func (s *Server) listQuarantine(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	total, err := totalParam(r)
	if err != nil {
		return err
	}
	if s.deps.Quarantine == nil {
		p := newPage[store.QuarantinedMail](nil, "")
		if total {
			p.Total = new(int64)
		}
		writePage(w, r, p)
		return nil
	}
	items, next, err := s.deps.Quarantine.ListQuarantinedMail(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	p := newPage(items, next)
	if total {
		n, err := s.deps.Quarantine.CountQuarantinedMail(r.Context())
		if err != nil {
			return err
		}
		p.Total = &n
	}
	writePage(w, r, p)
	return nil
}
