package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/bounced/bounced/internal/parse"
)

func (s *Server) listCodes(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, newPage(parse.Catalog(), ""))
	return nil
}

func (s *Server) getCode(w http.ResponseWriter, r *http.Request) error {
	code := chi.URLParam(r, "code")
	e, err := parse.Explain(code)
	if err != nil {
		return badRequest("code", "%q is neither an enhanced status code (5.1.1) nor an SMTP reply code (550)", code)
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}
