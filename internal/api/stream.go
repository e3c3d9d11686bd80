package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/push"
	"github.com/bounced/bounced/internal/store"
)

// GET /v1/stream serves the feed of changes of the suppression lists as
// Server-Sent Events: each change an event whose id is the change's id,
// whose type is the change's type and whose data is the JSON a webhook
// delivery of it carries. A client that reconnects sends the last id it
// got as Last-Event-ID (EventSource does) and gets every change after it,
// none twice. Idle streams carry a comment every StreamHeartbeat, so
// proxies and clients see a live connection.

const (
	// streamPage is how many changes a stream reads at once.
	streamPage = 100
	// streamWriteTimeout bounds each write to a stream: a client that
	// stops reading is dropped.
	streamWriteTimeout = 10 * time.Second
	// streamPoll is how often a stream reads the feed besides the
	// notifications of new changes (which a replica may miss);
	// streamHeld how soon it reads again when changes of younger
	// transactions wait for an older one to finish.
	streamPoll = time.Second
	streamHeld = 50 * time.Millisecond
	// streamRetry is the reconnection delay the stream asks clients for.
	streamRetry = 2 * time.Second
	// streamMaxScopes bounds the scope filter.
	streamMaxScopes = 100
)

func (s *Server) stream(w http.ResponseWriter, r *http.Request) error {
	if s.deps.Changes == nil {
		return ErrNotFound
	}
	f, err := streamFilter(r)
	if err != nil {
		return err
	}
	pos, err := s.streamStart(r)
	if err != nil {
		return err
	}
	select {
	case s.streams <- struct{}{}:
		defer func() { <-s.streams }()
	default:
		return ErrTooManyStreams
	}
	ctx := r.Context()
	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for requests, not streams:
	// each write gets its own deadline instead, and no read is waited for.
	if err := rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass events on at once
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	send := func() bool {
		if err := rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		_, err := w.Write(buf.Bytes())
		buf.Reset()
		if err == nil {
			err = rc.Flush()
		}
		return err == nil
	}
	fmt.Fprintf(&buf, ": changes of the suppression lists\nretry: %d\n\n", streamRetry.Milliseconds())
	if !send() {
		return nil
	}
	end := time.NewTimer(s.streamMaxDuration)
	defer end.Stop()
	heartbeat := time.NewTicker(s.streamHeartbeat)
	defer heartbeat.Stop()
	for {
		wake := s.deps.Changes.ChangesWritten()
		page, err := s.deps.Changes.ReadChanges(ctx, pos, f, streamPage)
		if err != nil {
			// Headers are sent: the stream ends, and the client resumes.
			if ctx.Err() == nil {
				s.logger.WarnContext(ctx, "stream: reading changes failed; ending the stream", "error", err)
			}
			return nil
		}
		for i := range page.Changes {
			c := &page.Changes[i]
			fmt.Fprintf(&buf, "id: %d\nevent: %s\ndata: %s\n\n", c.ID, c.Type, push.Body(c))
		}
		pos = page.Next
		if buf.Len() > 0 {
			if !send() {
				return nil
			}
			heartbeat.Reset(s.streamHeartbeat)
		}
		if len(page.Changes) == streamPage {
			continue
		}
		wait := streamPoll
		if page.Held {
			wait = streamHeld
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.closing:
			return nil
		case <-end.C:
			return nil
		case <-heartbeat.C:
			buf.WriteString(": keepalive\n\n")
			if !send() {
				return nil
			}
		case <-wake:
		case <-time.After(wait):
		}
	}
}

// streamFilter reads the stream's filters: the caller's tenant (a key
// bound to one sees only its own), types and scopes.
func streamFilter(r *http.Request) (store.ChangeFilter, error) {
	p := who(r)
	tenant, only, err := p.tenantFilter(r)
	if err != nil {
		return store.ChangeFilter{}, err
	}
	f := store.ChangeFilter{Tenant: tenant, OnlyTenant: only}
	q := r.URL.Query()
	for _, v := range q["type"] {
		for _, t := range strings.Split(v, ",") {
			ct := store.ChangeType(strings.TrimSpace(t))
			if !ct.Valid() {
				return f, badRequest("type", "unknown type %s: %s", quoteValue(t), changeTypeNames)
			}
			f.Types = append(f.Types, ct)
		}
	}
	if len(q["scope"]) > streamMaxScopes {
		return f, &TooManyItemsError{Param: "scope", Limit: streamMaxScopes}
	}
	for _, sc := range q["scope"] {
		qs, err := p.qualify(sc)
		if err != nil {
			return f, err
		}
		f.Scopes = append(f.Scopes, qs)
	}
	return f, nil
}

// streamStart is where a stream starts: after the change Last-Event-ID
// (or else ?after) names, after=0 from the oldest change kept, and with
// neither at the changes to come.
func (s *Server) streamStart(r *http.Request) (store.Position, error) {
	v, param := r.Header.Get("Last-Event-ID"), "Last-Event-ID"
	if v == "" {
		if !r.URL.Query().Has("after") {
			return s.deps.Changes.ChangesHead(r.Context())
		}
		v, param = r.URL.Query().Get("after"), "after"
	}
	id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || id < 0 {
		return store.Position{}, badRequest(param, "%s is the id of a change (an event's id), or 0 for the oldest kept", param)
	}
	if id == 0 {
		return store.Position{}, nil
	}
	pos, err := s.deps.Changes.ChangePosition(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Position{}, badRequest(param, "no change has id %d", id)
	}
	return pos, err
}
