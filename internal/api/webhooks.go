package api

import (
	"context"
	"io"
	"net/http"

	"github.com/bounced/bounced/internal/store"
)

// WebhookReceiver verifies, decodes and durably stores one ESP webhook
// request. It reads body, which the server caps.
//
// Receive returns store.ErrNotFound for a provider that is not
// configured; an error with an Unauthenticated() bool method for a request
// it refuses before storing anything (true: authentication failed, false:
// too malformed to authenticate), whose Error() is safe to show the
// sender; the body's read error, such as *http.MaxBytesError; and
// store.ErrUnavailable when the database is down. A verified payload it
// cannot decode is stored and returned with parse status failed.
type WebhookReceiver interface {
	Receive(ctx context.Context, provider string, header http.Header, body io.Reader) (store.Outcome, error)
	// Configured lists the providers with credentials.
	Configured() []string
}

// webhookAck is the answer to an accepted webhook request. Providers only
// look at the status code; the body is for people.
type webhookAck struct {
	RawID          int64 `json:"raw_id"`
	Replayed       bool  `json:"replayed"`
	EventsRecorded int   `json:"events_recorded"`
}

func (s *Server) receiveWebhook(provider string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if !s.webhooks[provider] {
			return ErrWebhookNotConfigured
		}
		out, err := s.deps.Webhooks.Receive(r.Context(), provider, r.Header, http.MaxBytesReader(w, r.Body, s.webhookMaxBody))
		if err != nil {
			return err
		}
		if out.Message.ParseStatus == store.ParseFailed {
			w.Header().Set("Location", messagePath(out.Message.ID))
			return &UnparsableError{RawID: out.Message.ID, Detail: out.Message.ParseError}
		}
		writeJSON(w, http.StatusOK, webhookAck{RawID: out.Message.ID, Replayed: !out.Created, EventsRecorded: out.Recorded})
		return nil
	}
}

func (s *Server) probeWebhook(provider string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, _ *http.Request) error {
		if !s.webhooks[provider] {
			return ErrWebhookNotConfigured
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
}
