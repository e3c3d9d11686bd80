package api

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/bounced/bounced/internal/store"
)

// mailTypes are the content types POST /v1/messages accepts.
var mailTypes = map[string]bool{
	"message/rfc822":           true,
	"message/global":           true,
	"application/octet-stream": true,
}

func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data":
		// QUIRK(curl): --data and -F send forms; --data also strips the
		// message's line breaks.
		return &MediaTypeError{Detail: "this is a form, not a message: send the raw message with Content-Type: message/rfc822, " +
			"e.g. curl --data-binary @bounce.eml -H 'Content-Type: message/rfc822' (curl --data strips line breaks)"}
	case err != nil || !mailTypes[mt]:
		return unsupportedMediaType("message/rfc822", "message/global", "application/octet-stream")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		return err
	}
	if len(raw) == 0 {
		return badRequest("body", "the request body is empty; send the raw message")
	}
	if !bytes.ContainsAny(raw, "\r\n") {
		// A message has at least one header line ended by a line break:
		// one long line is a file posted with curl --data, which strips them.
		return badRequest("body", "the body has no line breaks, so it is not a mail message; curl --data strips them: use --data-binary @file")
	}
	out, err := s.deps.Ingester.Ingest(r.Context(), "http", "", raw)
	if err != nil {
		return err
	}
	if out.Message.ParseStatus == store.ParseFailed {
		w.Header().Set("Location", messagePath(out.Message.ID))
		return &UnparsableError{RawID: out.Message.ID, Detail: out.Message.ParseError}
	}
	status := http.StatusOK
	if out.Created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", messagePath(out.Message.ID))
	writeJSON(w, status, out.Message)
	return nil
}

func messagePath(id int64) string { return "/v1/messages/" + strconv.FormatInt(id, 10) }

func messageID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, ErrNotFound
	}
	return id, nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) error {
	id, err := messageID(r)
	if err != nil {
		return err
	}
	m, err := s.deps.Messages.GetMessage(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) getMessageRaw(w http.ResponseWriter, r *http.Request) error {
	id, err := messageID(r)
	if err != nil {
		return err
	}
	body, ct, err := s.deps.Messages.GetMessageBody(r.Context(), id)
	if err != nil {
		return err
	}
	// The bytes are whatever a sender posted, in its content type: a
	// browser must download them, never render or sniff them.
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Disposition", `attachment; filename="message-`+strconv.FormatInt(id, 10)+`.raw"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
	return nil
}
