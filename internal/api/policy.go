package api

import (
	"net/http"

	"github.com/bounced/bounced/internal/store"
)

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	p, err := s.deps.Policy.GetPolicy(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// putPolicy replaces the policy; omitted fields take their defaults. A
// body carrying a version must match the stored one (409 otherwise).
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) error {
	var p store.Policy
	if err := s.decodeJSON(w, r, &p); err != nil {
		return err
	}
	out, err := s.deps.Policy.PutPolicy(r.Context(), p, who(r).name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
