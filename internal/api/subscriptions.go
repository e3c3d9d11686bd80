package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/bounced/bounced/internal/push"
	"github.com/bounced/bounced/internal/store"
)

// Outbound webhook subscriptions, for admin keys: where to push which
// changes of the suppression lists. A subscription bound to a tenant gets
// only that tenant's changes.

// changeTypeNames lists the change types for problems.
var changeTypeNames = func() string {
	var names []string
	for _, t := range store.ChangeTypes() {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}()

// subscriptionsMaxScopes bounds a subscription's scope filter.
const subscriptionsMaxScopes = 100

type subscriptionRequest struct {
	URL         *string   `json:"url"`
	EventTypes  *[]string `json:"event_types"`
	Scopes      *[]string `json:"scopes"`
	Tenant      *string   `json:"tenant"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
	Secret      *string   `json:"secret"`
}

// createdSubscription is a subscription as created: with its secret,
// shown this once.
type createdSubscription struct {
	store.Subscription
	Secret string `json:"secret"`
}

// check validates what a create or an update gives, for tenant (the
// subscription's): the URL, the types, the scopes (qualified in the
// tenant) and the secret.
func (s *Server) checkSubscription(req *subscriptionRequest, tenant string) (types *[]store.ChangeType, scopes *[]string, err error) {
	if req.URL != nil {
		if err := push.CheckURL(*req.URL, s.outboundAllowPrivate); err != nil {
			return nil, nil, badRequest("url", "%s", strings.TrimPrefix(err.Error(), "push: "))
		}
	}
	if req.EventTypes != nil {
		if len(*req.EventTypes) == 0 {
			return nil, nil, badRequest("event_types", "name at least one of %s", changeTypeNames)
		}
		ts := []store.ChangeType{}
		seen := map[store.ChangeType]bool{}
		for _, t := range *req.EventTypes {
			ct := store.ChangeType(t)
			if !ct.Valid() {
				return nil, nil, badRequest("event_types", "unknown event type %s: %s", quoteValue(t), changeTypeNames)
			}
			if !seen[ct] {
				seen[ct] = true
				ts = append(ts, ct)
			}
		}
		types = &ts
	}
	if req.Scopes != nil {
		if len(*req.Scopes) > subscriptionsMaxScopes {
			return nil, nil, &TooManyItemsError{Param: "scopes", Limit: subscriptionsMaxScopes}
		}
		qs := []string{}
		for _, sc := range *req.Scopes {
			q, err := store.QualifyScope(tenant, sc)
			if errors.Is(err, store.ErrBadScope) {
				return nil, nil, badRequest("scopes", "%s", strings.TrimPrefix(err.Error(), "store: bad scope: "))
			}
			if err != nil {
				return nil, nil, err
			}
			qs = append(qs, q)
		}
		scopes = &qs
	}
	if req.Secret != nil {
		if _, err := push.SecretKey(*req.Secret); err != nil {
			return nil, nil, badRequest("secret", "%s", strings.TrimPrefix(err.Error(), "push: "))
		}
	}
	if req.Description != nil && len(*req.Description) > 1000 {
		return nil, nil, badRequest("description", "description is longer than 1000 characters")
	}
	return types, scopes, nil
}

func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) error {
	if s.deps.Subscriptions == nil {
		return ErrNotFound
	}
	var req subscriptionRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	p := who(r)
	tenant := p.tenant
	if req.Tenant != nil {
		switch {
		case *req.Tenant != "" && !store.ValidTenant(*req.Tenant):
			return badRequest("tenant", "tenant names are 1-63 of a-z 0-9 . _ -")
		case p.tenant != "" && *req.Tenant != p.tenant:
			return store.ErrForbiddenScope
		}
		tenant = *req.Tenant
	}
	if req.URL == nil {
		return badRequest("url", "url is required")
	}
	if req.Enabled != nil && !*req.Enabled {
		return badRequest("enabled", "a subscription starts enabled; turn it off with PATCH")
	}
	types, scopes, err := s.checkSubscription(&req, tenant)
	if err != nil {
		return err
	}
	n := store.NewSubscription{URL: *req.URL, EventTypes: store.ChangeTypes(), Tenant: tenant, CreatedBy: p.name}
	if types != nil {
		n.EventTypes = *types
	}
	if scopes != nil {
		n.Scopes = *scopes
	}
	if req.Description != nil {
		n.Description = *req.Description
	}
	n.Secret = push.NewSecret()
	if req.Secret != nil {
		n.Secret = *req.Secret
	}
	sub, err := s.deps.Subscriptions.CreateSubscription(r.Context(), n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/subscriptions/"+strconv.FormatInt(sub.ID, 10))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createdSubscription{Subscription: sub, Secret: n.Secret})
	return nil
}

func (s *Server) listSubscriptions(w http.ResponseWriter, r *http.Request) error {
	if s.deps.Subscriptions == nil {
		return ErrNotFound
	}
	tenant, only, err := who(r).tenantFilter(r)
	if err != nil {
		return err
	}
	total, err := totalParam(r)
	if err != nil {
		return err
	}
	// At most store.SubscriptionsMax: one page.
	subs, err := s.deps.Subscriptions.ListSubscriptions(r.Context(), tenant, only)
	if err != nil {
		return err
	}
	p := newPage(subs, "")
	if total {
		n := int64(len(subs))
		p.Total = &n
	}
	writePage(w, r, p)
	return nil
}

// subscription reads the {id} of the route: the caller's subscription, or
// ErrNotFound (also for another tenant's).
func (s *Server) subscription(r *http.Request) (store.Subscription, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 || s.deps.Subscriptions == nil {
		return store.Subscription{}, ErrNotFound
	}
	sub, err := s.deps.Subscriptions.GetSubscription(r.Context(), id)
	if err != nil {
		return store.Subscription{}, err
	}
	if p := who(r); p.tenant != "" && sub.Tenant != p.tenant {
		return store.Subscription{}, ErrNotFound
	}
	return sub, nil
}

func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.subscription(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sub)
	return nil
}

// updateSubscription changes the fields the body names (a JSON merge of
// the subscription's fields); the tenant cannot change.
func (s *Server) updateSubscription(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.subscription(r)
	if err != nil {
		return err
	}
	var req subscriptionRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Tenant != nil && *req.Tenant != sub.Tenant {
		return badRequest("tenant", "a subscription's tenant cannot change; create another")
	}
	types, scopes, err := s.checkSubscription(&req, sub.Tenant)
	if err != nil {
		return err
	}
	out, err := s.deps.Subscriptions.UpdateSubscription(r.Context(), sub.ID, store.SubscriptionPatch{URL: req.URL, Secret: req.Secret,
		EventTypes: types, Scopes: scopes, Description: req.Description, Enabled: req.Enabled}, who(r).name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.subscription(r)
	if err != nil {
		return err
	}
	if err := s.deps.Subscriptions.DeleteSubscription(r.Context(), sub.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.subscription(r)
	if err != nil {
		return err
	}
	f := store.DeliveryFilter{Cursor: r.URL.Query().Get("cursor"), State: store.DeliveryState(r.URL.Query().Get("state"))}
	if f.State != "" && !f.State.Valid() {
		return badRequest("state", "state is pending, delivered or dead")
	}
	if f.Limit, err = limitParam(r); err != nil {
		return err
	}
	total, err := totalParam(r)
	if err != nil {
		return err
	}
	items, next, err := s.deps.Subscriptions.ListDeliveries(r.Context(), sub.ID, f)
	if err != nil {
		return err
	}
	p := newPage(items, next)
	if total {
		n, err := s.deps.Subscriptions.CountDeliveries(r.Context(), sub.ID, f.State)
		if err != nil {
			return err
		}
		p.Total = &n
	}
	writePage(w, r, p)
	return nil
}

// deliveryID reads the {delivery} of the route.
func deliveryID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(chi.URLParam(r, "delivery"), 10, 64)
	if err != nil || id <= 0 {
		return 0, ErrNotFound
	}
	return id, nil
}

func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.subscription(r)
	if err != nil {
		return err
	}
	id, err := deliveryID(r)
	if err != nil {
		return err
	}
	d, err := s.deps.Subscriptions.GetDelivery(r.Context(), sub.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, d)
	return nil
}

// replayDelivery sends a delivery again: pending, due now, with a fresh
// count of attempts, with the same webhook-id.
func (s *Server) replayDelivery(w http.ResponseWriter, r *http.Request) error {
	sub, err := s.subscription(r)
	if err != nil {
		return err
	}
	id, err := deliveryID(r)
	if err != nil {
		return err
	}
	d, err := s.deps.Subscriptions.ReplayDelivery(r.Context(), sub.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, d)
	return nil
}
