package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

type statsResponse struct {
	Since   time.Time        `json:"since"`
	Until   time.Time        `json:"until"`
	Bucket  string           `json:"bucket"`
	GroupBy string           `json:"group_by"`
	Tenant  *string          `json:"tenant"`
	Items   []store.StatsRow `json:"items"`
}

func (s *Server) getStats(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var sq store.StatsQuery
	var err error
	if sq.Tenant, sq.OnlyTenant, err = who(r).tenantFilter(r); err != nil {
		return err
	}
	if sq.Bucket, err = bucketParam(r); err != nil {
		return err
	}
	sq.GroupBy = store.StatsGroup(q.Get("group_by"))
	if sq.GroupBy == "none" {
		sq.GroupBy = store.GroupNone
	}
	if !sq.GroupBy.Valid() {
		return badRequest("group_by", "group_by must be none, domain, source, provider or reason")
	}
	if sq.Groups, err = groupsParam(r); err != nil {
		return err
	}
	if sq.Since, sq.Until, err = s.statsWindow(r, sq.Bucket); err != nil {
		return err
	}
	rows, err := s.deps.Stats.Stats(r.Context(), sq)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []store.StatsRow{}
	}
	resp := statsResponse{Since: sq.Since, Until: sq.Until, Bucket: string(sq.Bucket), GroupBy: string(sq.GroupBy), Items: rows}
	if resp.GroupBy == "" {
		resp.GroupBy = "none"
	}
	if sq.OnlyTenant {
		resp.Tenant = &sq.Tenant
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// bucketParam reads the bucket of a time series: hour (the default) or day.
func bucketParam(r *http.Request) (store.StatsBucket, error) {
	b := store.StatsBucket(r.URL.Query().Get("bucket"))
	if b == "" {
		b = store.BucketHour
	}
	if b != store.BucketHour && b != store.BucketDay {
		return "", badRequest("bucket", "bucket must be hour or day")
	}
	return b, nil
}

// groupsParam reads how many groups a breakdown names (0: the default).
func groupsParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("groups")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > store.StatsGroupsMax {
		return 0, badRequest("groups", "groups must be a number from 1 to %d", store.StatsGroupsMax)
	}
	return n, nil
}

// statsWindow reads since and until: until defaults to now, since to 24
// hours (hour buckets) or 30 days (day buckets) before until.
func (s *Server) statsWindow(r *http.Request, bucket store.StatsBucket) (since, until time.Time, err error) {
	if until, err = timeParam(r, "until"); err != nil {
		return since, until, err
	}
	if since, err = timeParam(r, "since"); err != nil {
		return since, until, err
	}
	if until.IsZero() {
		until = s.now()
	}
	if since.IsZero() {
		since = until.Add(-24 * time.Hour)
		if bucket == store.BucketDay {
			since = until.Add(-30 * 24 * time.Hour)
		}
	}
	if !until.After(since) {
		return since, until, badRequest("until", "until must be after since")
	}
	return since, until, nil
}

type sentItem struct {
	At       *time.Time `json:"at,omitempty"`
	Count    int64      `json:"count"`
	Domain   string     `json:"domain,omitempty"`
	Provider string     `json:"provider,omitempty"`
}

// sentMessage is a message reported sent, for BOUNCED_MAIL_TRUST=sent.
type sentMessage struct {
	MessageID string     `json:"message_id"`
	Recipient string     `json:"recipient,omitempty"`
	At        *time.Time `json:"at,omitempty"`
}

type sentRequest struct {
	ReportID string `json:"report_id,omitempty"`
	sentItem
	Items    []sentItem    `json:"items"`
	Messages []sentMessage `json:"messages"`
}

// postSent records sent volume reported by a sender: one count, or items,
// and the messages sent (their Message-IDs or VERP tokens), which verify
// the bounces about them under BOUNCED_MAIL_TRUST=sent. The key's tenant
// (none for keys without one) owns them.
func (s *Server) postSent(w http.ResponseWriter, r *http.Request) error {
	var req sentRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	items := req.Items
	switch {
	case req.Items != nil && req.Count != 0:
		return badRequest("body", "send either one count or items, not both")
	case req.Items == nil && req.Count == 0 && req.At == nil && len(req.Messages) > 0:
		items = nil // messages only
	case req.Items == nil:
		items = []sentItem{req.sentItem}
	case len(req.Items) == 0:
		return badRequest("items", "items is empty")
	case len(req.Items) > store.CheckMax:
		return &TooManyItemsError{Param: "items", Limit: store.CheckMax}
	}
	msgs, err := s.sentMessages(req.Messages)
	if err != nil {
		return err
	}
	if len(req.ReportID) > 200 {
		return badRequest("report_id", "report_id is longer than 200 characters")
	}
	now := s.now()
	counts := make([]store.SentCount, len(items))
	total := int64(0)
	for i, it := range items {
		at := now
		if it.At != nil {
			at = *it.At
		}
		switch {
		case it.Count < 0 || it.Count > 1e12:
			return badRequest("count", "count must be from 0 to 10^12")
		case at.After(now.Add(time.Hour)):
			return badRequest("at", "at is in the future")
		case len(it.Domain) > 255 || len(it.Provider) > 100 || strings.ContainsAny(it.Domain+it.Provider, " \t\r\n"):
			return badRequest("domain", "domain and provider are names without spaces")
		}
		counts[i] = store.SentCount{At: at, Count: it.Count, Domain: it.Domain, Provider: it.Provider}
		total += it.Count
	}
	applied := true
	if len(counts) > 0 {
		if applied, err = s.deps.Stats.RecordSent(r.Context(), who(r).tenant, req.ReportID, counts); err != nil {
			return err
		}
	}
	if err := s.deps.Stats.RecordSentMessages(r.Context(), who(r).tenant, msgs); err != nil {
		return err
	}
	status := http.StatusAccepted
	if !applied {
		status, total = http.StatusOK, 0
	}
	writeJSON(w, status, map[string]any{"counted": total, "duplicate": !applied, "messages": len(msgs)})
	return nil
}

// sentMessages validates the messages of a sent report.
func (s *Server) sentMessages(in []sentMessage) ([]store.SentMessage, error) {
	if len(in) > store.CheckMax {
		return nil, &TooManyItemsError{Param: "messages", Limit: store.CheckMax}
	}
	now := s.now()
	out := make([]store.SentMessage, len(in))
	for i, m := range in {
		param := "messages[" + strconv.Itoa(i) + "]"
		id := strings.TrimSpace(m.MessageID)
		if id == "" || len(id) > 998 || strings.ContainsFunc(id, unicode.IsControl) {
			return nil, badRequest(param+".message_id", "message_id must be a Message-ID or VERP token of 1 to 998 characters")
		}
		out[i] = store.SentMessage{MessageID: id, At: now}
		if m.At != nil {
			if m.At.After(now.Add(time.Hour)) {
				return nil, badRequest(param+".at", "at is in the future")
			}
			out[i].At = *m.At
		}
		if m.Recipient != "" {
			addr, err := parse.NormalizeAddress(m.Recipient)
			if err != nil {
				return nil, badRequest(param+".recipient", "%s is not a mail address", quoteValue(m.Recipient))
			}
			out[i].Recipient = addr
		}
	}
	return out, nil
}
