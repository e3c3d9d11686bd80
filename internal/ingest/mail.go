package ingest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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

// MaxRecipientsDefault caps the recipients recorded from one message.
// Real reports name a few (an MTA reports the recipients of one delivery
// attempt, 50 by Postfix's default); anyone can mail a report naming
// thousands.
const MaxRecipientsDefault = 200

// Trust says which bounces received as mail may suppress.
type Trust string

// Trust levels.
const (
	// TrustAny lets every bounce suppress: anyone who can mail the bounce
	// address can have addresses suppressed, up to MaxRecipients a
	// message.
	TrustAny Trust = "any"
	// TrustSent lets a bounce suppress only when it is about a message
	// reported sent (POST /v1/sent), by its Original-Message-ID or the
	// Message-ID of the returned message, or by its VERP token. Any other
	// is recorded and counted as unverified, and suppresses nothing.
	TrustSent Trust = "sent"
)

// SentMatcher finds which recipients of a bounce were sent one of the
// messages it names; it returns store.ErrUnavailable when the database
// is down.
type SentMatcher interface {
	MatchSent(ctx context.Context, ids, addresses []string) (map[string]bool, error)
}

var _ SentMatcher = (*store.DB)(nil)

// MailOptions are a Mail ingester's settings and dependencies; zero fields
// take defaults.
type MailOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	NowFunc    func() time.Time
	// MaxRecipients caps the recipients recorded from one message: the
	// first MaxRecipients are, the rest are counted in one parse error.
	MaxRecipients int
	// Trust is TrustAny when empty; TrustSent needs Sent.
	Trust Trust
	Sent  SentMatcher
}

// Mail ingests raw bounce messages.
type Mail struct {
	rec           Recorder
	logger        *slog.Logger
	now           func() time.Time
	maxRecipients int
	trust         Trust
	sent          SentMatcher
	unverified    *prometheus.CounterVec
	received      *prometheus.CounterVec
	parsed        *prometheus.CounterVec
	parseDur      prometheus.Histogram
	total         *prometheus.HistogramVec
	dropped       *prometheus.CounterVec
}

// NewMail returns a mail ingester writing to rec.
func NewMail(rec Recorder, opts MailOptions) (*Mail, error) {
	logger := cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	now := opts.NowFunc
	if now == nil {
		now = time.Now
	}
	m := &Mail{
		rec:           rec,
		logger:        logger.With("component", "ingest.mail"),
		now:           now,
		maxRecipients: cmp.Or(max(opts.MaxRecipients, 0), MaxRecipientsDefault),
		trust:         cmp.Or(opts.Trust, TrustAny),
		sent:          opts.Sent,
		unverified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "ingest", Name: "unverified_total",
			Help: "Events from mail that matched no message reported sent (BOUNCED_MAIL_TRUST=sent): recorded, not suppressing; by source.",
		}, []string{"source"}),
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
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "bounced", Subsystem: "ingest", Name: "recipients_dropped_total",
			Help: "Recipients not recorded because their message named more than the per-message cap, by source.",
		}, []string{"source"}),
	}
	switch {
	case m.trust != TrustAny && m.trust != TrustSent:
		return nil, fmt.Errorf("ingest: trust %q is not any or sent", m.trust)
	case m.trust == TrustSent && m.sent == nil:
		return nil, errors.New("ingest: trust sent needs the messages reported sent")
	}
	// Exported at 0 from the start, so dashboards and alerts see them.
	for _, src := range []string{"http", "imap", "maildir", "mbox", "smtp", "lmtp"} {
		m.dropped.WithLabelValues(src)
		m.unverified.WithLabelValues(src)
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{m.received, m.parsed, m.parseDur, m.total, m.dropped, m.unverified} {
			if err := opts.Registerer.Register(c); err != nil {
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

// withEnvelopeTo writes the VERP addresses among the envelope recipients
// of mail received over SMTP or LMTP into an Envelope-To field at its
// top, as a delivery agent writes the recipient it delivers to. The
// envelope is otherwise not kept in the bytes, and bytes are stored once:
// the same bounce sent to two VERP addresses (two transactions with the
// same bytes) would be taken for one message sent twice and the second
// recipient lost. With the field each is stored as its own message, and
// the same bytes sent again to the same addresses are still one. The
// addresses are sorted, so their order in the transaction does not
// matter. Mail to no VERP address is left as it is.
func withEnvelopeTo(raw []byte, v parse.VERP, rcpts []string) []byte {
	var verps []string
	for _, r := range rcpts {
		if _, _, ok := v.Decode(r); ok && !slices.Contains(verps, r) {
			verps = append(verps, r)
		}
	}
	if len(verps) == 0 {
		return raw
	}
	slices.Sort(verps)
	eol := "\r\n"
	if i := bytes.IndexByte(raw, '\n'); i >= 0 && (i == 0 || raw[i-1] != '\r') {
		eol = "\n" // keep the message's own line breaks
	}
	field := "Envelope-To: " + strings.Join(verps, ","+eol+" ") + eol
	return append([]byte(field), raw...)
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
	// VERPRecipients are every recipient decoded from a VERP address when
	// there are several (VERPRecipient is the first).
	VERPRecipients []string `json:"verp_recipients,omitempty"`
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
	// The cap comes before anything else reads the recipients: the stored
	// result and the events hold the first ones only.
	var capped error
	if n := len(rep.Recipients); n > m.maxRecipients {
		rep.Recipients = rep.Recipients[:m.maxRecipients:m.maxRecipients]
		capped = fmt.Errorf("ingest: the message names %d recipients; the first %d were recorded, %d were not (BOUNCED_MAX_RECIPIENTS_PER_MESSAGE)",
			n, m.maxRecipients, n-m.maxRecipients)
		m.dropped.WithLabelValues(env.Source).Add(float64(n - m.maxRecipients))
		m.logger.WarnContext(ctx, "message over the recipient cap", "source", env.Source, "provider", env.Provider,
			"recipients", n, "recorded", m.maxRecipients)
	}
	var result any = rep
	if env.MailFrom != "" || len(env.RcptTo) > 0 || rep.VERP != nil {
		e := envelopeResult{MailFrom: env.MailFrom, RcptTo: env.RcptTo}
		if v := rep.VERP; v != nil {
			e.VERPRecipient, e.VERPToken, e.RecipientFromVERP = v.Recipient, v.Token, v.Used
		}
		for _, v := range rep.VERPs {
			e.VERPRecipients = append(e.VERPRecipients, v.Recipient)
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
	if err := m.verify(ctx, rep, in.Events); err != nil {
		return store.Outcome{}, err
	}
	if capped != nil {
		in.Error = capped.Error()
		if perr != nil {
			in.Error = perr.Error() + "; " + in.Error
		}
	}
	out, err := m.rec.Record(ctx, in)
	if err != nil {
		return store.Outcome{}, err
	}
	if out.Created {
		for _, ev := range in.Events {
			if ev.Unverified {
				m.unverified.WithLabelValues(env.Source).Inc()
			}
		}
	}
	m.received.WithLabelValues(env.Source).Inc()
	m.total.WithLabelValues(env.Source).Observe(time.Since(start).Seconds())
	return out, nil
}

// verify marks, under TrustSent, the events whose recipient was sent none
// of the messages the bounce names (its original Message-ID, its VERP
// token) as unverified.
func (m *Mail) verify(ctx context.Context, rep *parse.Report, evs []parse.Event) error {
	if m.trust != TrustSent || len(evs) == 0 {
		return nil
	}
	var ids []string
	if rep.OriginalMessageID != "" {
		ids = append(ids, rep.OriginalMessageID)
	}
	if rep.VERP != nil && rep.VERP.Token != "" {
		ids = append(ids, rep.VERP.Token)
	}
	for _, v := range rep.VERPs[min(1, len(rep.VERPs)):] { // the first is rep.VERP
		if v.Token != "" {
			ids = append(ids, v.Token)
		}
	}
	if rep.Original != nil && rep.Original.MessageID != "" {
		ids = append(ids, rep.Original.MessageID)
	}
	addrs := make([]string, len(evs))
	for i, ev := range evs {
		addrs[i] = ev.Address
	}
	sent, err := m.sent.MatchSent(ctx, ids, addrs)
	if err != nil {
		return err
	}
	for i := range evs {
		evs[i].Unverified = !sent[parse.AddressKey(evs[i].Address)]
	}
	return nil
}
