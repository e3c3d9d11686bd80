package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// senderCode is one status code seen among a reason's failures, with
// what the catalog says of it and how to fix it.
type senderCode struct {
	// Code is the enhanced status code, or the SMTP reply code when the
	// report gave none.
	Code      string `json:"code"`
	Status    string `json:"status"`
	ReplyCode string `json:"reply_code"`
	Count     int64  `json:"count"`
	Title     string `json:"title"`
	TitleES   string `json:"title_es"`
	Meaning   string `json:"meaning"`
	MeaningES string `json:"meaning_es"`
	Fix       string `json:"fix"`
	FixES     string `json:"fix_es"`
}

// senderReason is the failures of one sender-side reason, what the
// reason means and how to fix it, and the codes seen.
type senderReason struct {
	Reason parse.Reason `json:"reason"`
	Count  int64        `json:"count"`
	parse.Remedy
	Codes []senderCode `json:"codes"`
}

type senderHealthResponse struct {
	Since          time.Time                 `json:"since"`
	Until          time.Time                 `json:"until"`
	Bucket         string                    `json:"bucket"`
	Tenant         *string                   `json:"tenant"`
	Total          int64                     `json:"total"`
	ByReason       []senderReason            `json:"by_reason"`
	ByReportingMTA []store.SenderCount       `json:"by_reporting_mta"`
	BySource       []store.SenderSourceCount `json:"by_source"`
	Series         []store.SenderBucket      `json:"series"`
	Examples       []store.Event             `json:"examples"`
}

// getSenderHealth answers the sender-side failures (authentication,
// relay, protocol sequence, SPF/DKIM/DMARC) of a window: counts by
// reason, reporting MTA and source, in total and by hour or day, the
// latest examples, and per reason and code what it means and how to fix
// it, in English and Spanish.
func (s *Server) getSenderHealth(w http.ResponseWriter, r *http.Request) error {
	var q store.SenderHealthQuery
	var err error
	if q.Tenant, q.OnlyTenant, err = who(r).tenantFilter(r); err != nil {
		return err
	}
	if q.Bucket, err = bucketParam(r); err != nil {
		return err
	}
	if q.Groups, err = groupsParam(r); err != nil {
		return err
	}
	if v := r.URL.Query().Get("examples"); v != "" {
		if q.Examples, err = strconv.Atoi(v); err != nil || q.Examples < 1 || q.Examples > store.SenderExamplesMax {
			return badRequest("examples", "examples must be a number from 1 to %d", store.SenderExamplesMax)
		}
	}
	if q.Since, q.Until, err = s.statsWindow(r, q.Bucket); err != nil {
		return err
	}
	h, err := s.deps.Stats.SenderHealth(r.Context(), q)
	if err != nil {
		return err
	}
	resp := senderHealthResponse{Since: q.Since, Until: q.Until, Bucket: string(q.Bucket), Total: h.Total,
		ByReason: []senderReason{}, ByReportingMTA: h.ByReportingMTA, BySource: h.BySource, Series: h.Series, Examples: h.Examples}
	if q.OnlyTenant {
		resp.Tenant = &q.Tenant
	}
	byReason := map[parse.Reason]int{}
	for _, c := range h.ByReason {
		reason := parse.Reason(c.Key)
		rem, _ := parse.SenderRemedy(reason)
		byReason[reason] = len(resp.ByReason)
		resp.ByReason = append(resp.ByReason, senderReason{Reason: reason, Count: c.Count, Remedy: rem, Codes: []senderCode{}})
	}
	for _, c := range h.Codes {
		i, ok := byReason[c.Reason]
		if !ok {
			continue
		}
		resp.ByReason[i].Codes = append(resp.ByReason[i].Codes, explainSenderCode(c))
	}
	if resp.ByReportingMTA == nil {
		resp.ByReportingMTA = []store.SenderCount{}
	}
	if resp.BySource == nil {
		resp.BySource = []store.SenderSourceCount{}
	}
	if resp.Series == nil {
		resp.Series = []store.SenderBucket{}
	}
	if resp.Examples == nil {
		resp.Examples = []store.Event{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// explainSenderCode adds to a code seen what the catalog says of it and
// how to fix it.
func explainSenderCode(c store.SenderCode) senderCode {
	out := senderCode{Code: c.Status, Status: c.Status, ReplyCode: c.ReplyCode, Count: c.Count}
	if out.Code == "" {
		out.Code = c.ReplyCode
	}
	st := parse.Status(c.Status)
	if e, err := parse.Explain(out.Code); err == nil {
		out.Title, out.TitleES, out.Meaning, out.MeaningES = e.Title, e.TitleES, e.Meaning, e.MeaningES
		if e.Title == "" { // a code outside the registry: its subject at least
			out.Title, out.TitleES = e.Subject, e.SubjectES
		}
		if st == "" {
			st = e.Code
		}
	}
	out.Fix, out.FixES = parse.SenderFix(c.Reason, st)
	return out
}
