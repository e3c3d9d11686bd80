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
	if s.deps.Quarantine == nil {
		writeJSON(w, http.StatusOK, newPage[store.QuarantinedMail](nil, ""))
		return nil
	}
	items, next, err := s.deps.Quarantine.ListQuarantinedMail(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newPage(items, next))
	return nil
}
