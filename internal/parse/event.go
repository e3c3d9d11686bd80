package parse

import (
	"errors"
	"net/mail"
	"strings"
	"time"
)

// EventType is what an event records.
type EventType string

// Event types. The first seven come from reports and providers; the rest
// record actions on the suppression list and counters.
const (
	EventBounce      EventType = "bounce"
	EventDelay       EventType = "delay"
	EventDelivery    EventType = "delivery"
	EventComplaint   EventType = "complaint"
	EventAutoReply   EventType = "auto_reply"
	EventUnsubscribe EventType = "unsubscribe"
	// EventSent is a message a provider accepted for delivery and will
	// try to deliver: not a delivery, so it changes no counter.
	EventSent               EventType = "sent"
	EventSuppressionAdded   EventType = "suppression_added"
	EventSuppressionRemoved EventType = "suppression_removed"
	EventReset              EventType = "reset"
)

// Valid reports whether t is a known event type.
func (t EventType) Valid() bool {
	switch t {
	case EventBounce, EventDelay, EventDelivery, EventComplaint, EventAutoReply,
		EventUnsubscribe, EventSent, EventSuppressionAdded, EventSuppressionRemoved, EventReset:
		return true
	}
	return false
}

// Event is one thing that happened to one recipient, as a report or a
// provider's notification tells it: what bounced records. Every path
// derives it here, in parse: Events for a report (a DSN, a mailed
// notification, a bounce named by its VERP address), the provider
// constructors (FailureEvent, DeliveryEvent, ...) and ReadSES for webhook
// payloads.
type Event struct {
	// Address is the recipient, normalised (NormalizeAddress).
	Address    string    `json:"recipient"`
	Type       EventType `json:"type"`
	Class      Class     `json:"class"`
	Reason     Reason    `json:"reason"`
	Status     Status    `json:"status"`
	ReplyCode  string    `json:"reply_code"`
	Diagnostic string    `json:"diagnostic"`
	// ReportingMTA and RemoteMTA are host names, without the "dns;" type.
	ReportingMTA      string `json:"reporting_mta"`
	RemoteMTA         string `json:"remote_mta"`
	OriginalMessageID string `json:"original_message_id"`
	// ProviderEventID is the provider's key for this event (or ProviderKey
	// of its fields when it gives none): the same key from the same
	// provider is recorded once.
	ProviderEventID string `json:"provider_event_id,omitempty"`
	// OccurredAt is when it happened; zero when nothing says, and the
	// store then takes the time of receipt.
	OccurredAt time.Time `json:"occurred_at,omitzero"`
	// Evidence is what decided Reason and Class (nil when nothing was
	// read from a report).
	Evidence *Evidence `json:"evidence,omitempty"`
	// Unverified marks a bounce that matched nothing reported sent, under
	// the mail trust "sent" (ingest decides it, parse never sets it): it
	// is recorded and counted, and never suppresses nor counts towards a
	// soft-bounce threshold.
	Unverified bool `json:"unverified,omitempty"`
	// Scope is the suppression scope the event is attributed to, when
	// the ingester knows one (a message reported sent, a credential or
	// mailbox bound to a tenant, a scope the sender named); empty for the
	// scope of its input. parse never sets it.
	Scope string `json:"scope,omitempty"`
}

// Events derives one event per recipient of rep that has a usable
// address. A report's own dates are used when plausible: within 30 days
// before received (and not after it, allowing for clock skew), since
// remote clocks are sometimes wrong; otherwise the event occurred at
// received. With received zero (no time of receipt, as for `bounced
// parse`) any date that parses is taken, and none leaves OccurredAt zero.
func Events(rep *Report, received time.Time) []Event {
	if rep == nil {
		return nil
	}
	evs := make([]Event, 0, len(rep.Recipients))
	for _, r := range rep.Recipients {
		addr, err := NormalizeAddress(r.Address)
		if err != nil {
			continue
		}
		evs = append(evs, Event{
			Address:           addr,
			Type:              eventTypeOf(rep.Kind, r),
			Class:             r.Class,
			Reason:            r.Reason,
			Status:            r.Status,
			ReplyCode:         r.ReplyCode,
			Diagnostic:        r.Diagnostic,
			ReportingMTA:      rep.ReportingMTA,
			RemoteMTA:         r.RemoteMTA,
			OriginalMessageID: rep.OriginalMessageID,
			OccurredAt:        plausibleTime(received, r.LastAttemptDate, rep.ArrivalDate),
			Evidence:          evidenceOf(r),
		})
	}
	return evs
}

// evidenceOf returns a recipient's evidence, its text cut to 1000 bytes,
// or nil when it has none.
func evidenceOf(r Recipient) *Evidence {
	if r.Evidence.From == "" {
		return nil
	}
	ev := r.Evidence
	ev.Text = clip(ev.Text, 1000)
	return &ev
}

func eventTypeOf(kind Kind, r Recipient) EventType {
	switch {
	case r.Class == ClassComplaint || kind == KindComplaint && r.Reason == ReasonComplaint:
		// A feedback report is a complaint unless it says otherwise: a
		// "not-spam" report reads as a delivery, an RFC 6591 auth-failure
		// report as the sender's failure, by their action below.
		return EventComplaint
	case kind == KindAutoReply || r.Reason == ReasonAutoReply:
		return EventAutoReply
	}
	switch r.Action {
	case ActionDelayed:
		return EventDelay
	case ActionDelivered, ActionRelayed, ActionExpanded:
		return EventDelivery
	}
	return EventBounce
}

// plausibleTime returns the first date that parses and lies within 30 days
// before received (and not after it), else received. With received zero,
// the first date that parses.
func plausibleTime(received time.Time, dates ...string) time.Time {
	for _, d := range dates {
		t, err := parseMailDate(d)
		if err != nil {
			continue
		}
		if received.IsZero() || t.After(received.Add(-30*24*time.Hour)) && t.Before(received.Add(time.Hour)) {
			return t
		}
	}
	return received
}

// parseMailDate reads an RFC 5322 date, tolerating the trailing comments
// ("(JST)") real MTAs write.
func parseMailDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '('); i > 0 {
		s = strings.TrimSpace(s[:i])
	}
	if t, ok, sure := quickMailDate(s); sure {
		if !ok {
			return time.Time{}, errMailDate
		}
		return t, nil
	}
	return mail.ParseDate(s)
}

// errMailDate is a date that no layout of mail.ParseDate reads.
var errMailDate = errors.New("parse: not an RFC 5322 date")

// mailDateLayouts are net/mail's date layouts (RFC 5322 section 3.3)
// with a one- or two-digit day, in the order mail.ParseDate tries them:
// without and with a day of the week, then by year, seconds and zone.
var mailDateLayouts = func() (l [2][12]string) {
	for d, dow := range [...]string{"", "Mon, "} {
		i := 0
		for _, year := range [...]string{"2006", "06"} {
			for _, second := range [...]string{":05", ""} {
				for _, zone := range [...]string{"-0700", "MST", "UT"} {
					l[d][i] = dow + "2 Jan " + year + " 15:04" + second + " " + zone
					i++
				}
			}
		}
	}
	return l
}()

// quickMailDate is mail.ParseDate without most of its failed attempts:
// it tries 48 layouts in turn, and each failure costs an error built
// with copies of both strings (a tenth of `bounced parse` on a corpus).
// When sure, it says what mail.ParseDate says: the same time (ok), or
// that no layout reads s; when not (sure false), the caller asks
// mail.ParseDate. Only layouts that could match are tried, in mail's
// order: a date that starts with a digit has no day of the week and
// one that starts with a letter has one; and a two-digit-day layout
// ("02") matches only where the one-or-two-digit one ("2") before it,
// otherwise the same, did. The empty string (most reports' missing
// dates) matches no layout. TestQuickMailDate and FuzzMailDate compare
// it with mail.ParseDate.
func quickMailDate(s string) (t time.Time, ok, sure bool) {
	if s == "" {
		return time.Time{}, false, true
	}
	if strings.IndexByte(s, '\r') >= 0 {
		return time.Time{}, false, false
	}
	var layouts *[12]string
	switch c := s[0]; {
	case '0' <= c && c <= '9':
		layouts = &mailDateLayouts[0]
	case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
		layouts = &mailDateLayouts[1]
	default:
		return time.Time{}, false, false
	}
	// The part mail.ParseDate reads: up to a numeric zone, else to the
	// last letter of an obsolete zone; what follows must hold no comment.
	date, rest := s, s
	if i := strings.IndexAny(s, "+-"); i != -1 && len(s) >= i+5 {
		date, rest = s[:i+5], s[i+5:]
	} else {
		i := strings.IndexByte(s, 'T')
		if i == 0 {
			if i = strings.IndexByte(s[1:], 'T'); i != -1 {
				i++
			}
		}
		if i != -1 && len(s) >= i+5 {
			date, rest = s[:i+1], s[i+1:]
		}
	}
	if strings.HasPrefix(strings.TrimLeft(rest, " \t"), "(") {
		return time.Time{}, false, false
	}
	for _, layout := range layouts {
		if t, err := time.Parse(layout, date); err == nil {
			return t, true, true
		}
	}
	return time.Time{}, false, true
}
