package api

import (
	"net/http"

	"github.com/bounced/bounced/internal/store"
)

func (s *Server) getSuppression(w http.ResponseWriter, r *http.Request) error {
	email, err := emailParam(r)
	if err != nil {
		return err
	}
	scope, err := scopeParam(r)
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

func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	scope, err := scopeParam(r)
	if err != nil {
		return err
	}
	items, next, err := s.deps.Suppressions.ListSuppressions(r.Context(), store.SuppressionFilter{
		Scope: scope, Cursor: r.URL.Query().Get("cursor"), Limit: limit,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newPage(items, next))
	return nil
}

func (s *Server) deleteSuppression(w http.ResponseWriter, r *http.Request) error {
	email, err := emailParam(r)
	if err != nil {
		return err
	}
	scope, err := scopeParam(r)
	if err != nil {
		return err
	}
	note := r.URL.Query().Get("note")
	if len(note) > 1000 {
		return badRequest("note", "note is longer than 1000 characters")
	}
	if _, err := s.deps.Suppressions.DeleteSuppression(r.Context(), email, scope, "api", note); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
