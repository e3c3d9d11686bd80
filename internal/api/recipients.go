package api

import (
	"errors"
	"net/http"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

type softWindow struct {
	Count      int `json:"count"`
	Threshold  int `json:"threshold"`
	WindowDays int `json:"window_days"`
}

type lastEvents struct {
	Bounce    *store.Event `json:"bounce"`
	Delivery  *store.Event `json:"delivery"`
	Complaint *store.Event `json:"complaint"`
}

type recipientView struct {
	Email        string              `json:"email"`
	Tenant       string              `json:"tenant"`
	State        *store.Recipient    `json:"state"`
	SoftWindow   softWindow          `json:"soft_window"`
	Suppressed   bool                `json:"suppressed"`
	Suppressions []store.Suppression `json:"suppressions"`
	LastEvents   lastEvents          `json:"last_events"`
	History      page[store.Event]   `json:"history"`
}

// getRecipient answers everything known about one address in one tenant
// (the key's, or the tenant parameter; none by default): counters, the
// entries that suppress it, the last bounce, delivery and complaint, and
// its event history a page at a time.
func (s *Server) getRecipient(w http.ResponseWriter, r *http.Request) error {
	email, err := emailParam(r)
	if err != nil {
		return err
	}
	p := who(r)
	tenant, _, err := p.tenantFilter(r)
	if err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	total, err := totalParam(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	v := recipientView{Email: email, Tenant: tenant, Suppressions: []store.Suppression{}}
	state, err := s.deps.Recipients.GetTenantRecipient(ctx, tenant, email)
	switch {
	case err == nil:
		v.State = &state
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	pol, err := s.deps.Policy.GetPolicy(ctx)
	if err != nil {
		return err
	}

	// Entries of the tenant's own lists, and the global list every check sees.
	filters := []store.SuppressionFilter{{Address: email, Tenant: tenant, OnlyTenant: true}}
	if tenant != "" {
		filters = append(filters, store.SuppressionFilter{Address: email, Scope: store.GlobalScope})
	}
	for _, f := range filters {
		f.Limit = store.LimitMax
		items, _, err := s.deps.Suppressions.ListSuppressions(ctx, f)
		if err != nil {
			return err
		}
		v.Suppressions = append(v.Suppressions, items...)
	}
	v.Suppressed = len(v.Suppressions) > 0
	for _, last := range []struct {
		typ parse.EventType
		dst **store.Event
	}{{parse.EventBounce, &v.LastEvents.Bounce}, {parse.EventDelivery, &v.LastEvents.Delivery}, {parse.EventComplaint, &v.LastEvents.Complaint}} {
		evs, _, err := s.deps.Events.ListEvents(ctx, store.EventFilter{Address: email, Tenant: tenant, OnlyTenant: true, Type: last.typ, Limit: 1})
		if err != nil {
			return err
		}
		if len(evs) == 1 {
			*last.dst = &evs[0]
		}
	}
	// The threshold that the next failure like the last one would face.
	v.SoftWindow = softWindow{Threshold: pol.SoftThreshold, WindowDays: pol.SoftWindowDays}
	if b := v.LastEvents.Bounce; b != nil {
		if rule, ok := pol.Reasons[b.Reason]; ok && rule.Threshold != nil {
			v.SoftWindow.Threshold = *rule.Threshold
		}
	}
	if v.State != nil {
		v.SoftWindow.Count = v.State.SoftCount
	}
	histFilter := store.EventFilter{Address: email, Tenant: tenant, OnlyTenant: true}
	pageFilter := histFilter
	pageFilter.Cursor, pageFilter.Limit = r.URL.Query().Get("cursor"), limit
	hist, next, err := s.deps.Events.ListEvents(ctx, pageFilter)
	if err != nil {
		return err
	}
	v.History = newPage(hist, next)
	if v.State == nil && !v.Suppressed && len(hist) == 0 {
		return ErrNotFound
	}
	if total {
		n, err := s.deps.Events.CountEvents(ctx, histFilter)
		if err != nil {
			return err
		}
		v.History.Total = &n
	}
	// The next page of the history is this view with the next cursor.
	setNextLink(w, r, next)
	writeJSON(w, http.StatusOK, v)
	return nil
}

type resetRequest struct {
	Note string `json:"note"`
}

func (s *Server) resetRecipient(w http.ResponseWriter, r *http.Request) error {
	email, err := emailParam(r)
	if err != nil {
		return err
	}
	p := who(r)
	tenant, _, err := p.tenantFilter(r)
	if err != nil {
		return err
	}
	var req resetRequest
	if r.ContentLength != 0 {
		if err := s.decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	if len(req.Note) > 1000 {
		return badRequest("note", "note is longer than 1000 characters")
	}
	state, err := s.deps.Recipients.ResetRecipient(r.Context(), tenant, email, p.name, req.Note)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, state)
	return nil
}
