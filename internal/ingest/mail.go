package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// Recorder stores an input with its events in one transaction and
// returns only once it has committed. It returns store.ErrUnavailable
// when the database cannot be reached.
type Recorder interface {
	Record(ctx context.Context, in store.Input) (store.Outcome, error)
}

var (
	_ Recorder = (*store.DB)(nil)
	_ Recorder = (*store.GroupCommitter)(nil)
)

// Mail ingests raw bounce messages.
type Mail struct {
	rec      Recorder
	logger   *slog.Logger
	now      func() time.Time
	received *prometheus.CounterVec
	parsed   *prometheus.CounterVec
	parseDur prometheus.Histogram
	total    *prometheus.HistogramVec
}

// NewMail returns a mail ingester writing to rec.
func NewMail(rec Recorder, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) (*Mail, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	m := &Mail{
		rec:    rec,
		logger: logger.With("component", "ingest.mail"),
		now:    now,
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Name: "messages_received_total",
			Help: "Raw inputs committed, by source (duplicates included).",
		}, []string{"source"}),
		parsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "parse", Name: "messages_total",
			Help: "Messages parsed, by outcome (kind, or error).",
		}, []string{"outcome"}),
		parseDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "bounced", Subsystem: "parse", Name: "duration_seconds",
			Help:    "Time to parse one message.",
			Buckets: []float64{.00001, .00005, .0001, .0005, .001, .005, .01, .05, .1},
		}),
		total: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "bounced", Subsystem: "ingest", Name: "duration_seconds",
			Help:    "Time to parse and commit one message, by source (http, imap, maildir, mbox, smtp, lmtp).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"source"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.received, m.parsed, m.parseDur, m.total} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Ingest parses raw and records it. An unreadable message is still stored
// (ParseStatus failed) and its id returned; only a store error fails.
func (m *Mail) Ingest(ctx context.Context, source, provider string, raw []byte) (store.Outcome, error) {
	return m.IngestEnvelope(ctx, Envelope{Source: source, Provider: provider}, raw)
}

// Envelope is what a transport knew about a message besides its bytes.
type Envelope struct {
	Source   string // http, imap, maildir, mbox, smtp, lmtp
	Provider string // the mailbox or listener name; may be empty
	// MailFrom and RcptTo are the SMTP envelope of mail received over
	// SMTP or LMTP.
	MailFrom string
	RcptTo   []string
	// VERP decodes the VERP bounce address the message was sent to (see
	// parse.Options.VERP): its recipient stands in when the report itself
	// names none. The zero value is off.
	VERP parse.VERP
}

// mailResult is the stored result of mail that came with an envelope.
type mailResult struct {
	*parse.Report
	Envelope envelopeResult `json:"envelope"`
}

type envelopeResult struct {
	MailFrom      string   `json:"mail_from,omitempty"`
	RcptTo        []string `json:"rcpt_to,omitempty"`
	VERPRecipient string   `json:"verp_recipient,omitempty"`
	VERPToken     string   `json:"verp_token,omitempty"`
	// RecipientFromVERP says the report named no recipient and the VERP
	// recipient was used instead.
	RecipientFromVERP bool `json:"recipient_from_verp,omitempty"`
}

// IngestEnvelope parses raw and records it with what env says. Like
// Ingest, only a store error fails.
func (m *Mail) IngestEnvelope(ctx context.Context, env Envelope, raw []byte) (store.Outcome, error) {
	start := time.Now()
	rep, perr := parse.ParseWithOptions(raw, parse.Options{VERP: env.VERP, EnvelopeTo: env.RcptTo})
	m.parseDur.Observe(time.Since(start).Seconds())
	// The VERP address names the recipient the report could not, even
	// when the rest of the message cannot be read.
	fromVERP := rep.VERP != nil && rep.VERP.Used
	var result any = rep
	if env.MailFrom != "" || len(env.RcptTo) > 0 || rep.VERP != nil {
		e := envelopeResult{MailFrom: env.MailFrom, RcptTo: env.RcptTo}
		if v := rep.VERP; v != nil {
			e.VERPRecipient, e.VERPToken, e.RecipientFromVERP = v.Recipient, v.Token, v.Used
		}
		result = mailResult{Report: rep, Envelope: e}
	}
	in := store.Input{
		Source: env.Source, Provider: env.Provider, ContentType: "message/rfc822", Raw: raw,
		Status: store.ParseParsed, Kind: string(rep.Kind), Result: result,
	}
	if perr != nil {
		in.Status, in.Error = store.ParseFailed, perr.Error()
		switch {
		case fromVERP:
			in.Events = parse.Events(rep, m.now())
		case errors.Is(perr, parse.ErrTooLarge) || errors.Is(perr, parse.ErrEmpty) || len(rep.Recipients) == 0:
			in.Kind = ""
			if result == any(rep) {
				in.Result = nil
			}
		}
		m.parsed.WithLabelValues("error").Inc()
	} else {
		m.parsed.WithLabelValues(string(rep.Kind)).Inc()
		in.Events = parse.Events(rep, m.now())
	}
	out, err := m.rec.Record(ctx, in)
	if err != nil {
		return store.Outcome{}, err
	}
	m.received.WithLabelValues(env.Source).Inc()
	m.total.WithLabelValues(env.Source).Observe(time.Since(start).Seconds())
	return out, nil
}
