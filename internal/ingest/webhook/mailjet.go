package webhook

import (
	"context"
	"github.com/bounced/bounced/internal/config"
	"net/http"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/parse"
)

// Mailjet is Mailjet's event API callbacks.
const Mailjet = "mailjet"

func init() {
	register(spec{
		name: Mailjet,
		settings: []config.WebhookSetting{
			{Name: "basic-auth", Usage: "user:password pairs in the Mailjet event URL", Secret: true, UserPassword: true},
		},
		build: func(b *builder) (provider, error) {
			users := b.settings.List("basic-auth")
			if len(users) == 0 {
				return nil, nil
			}
			return &mailjet{auth: newCredentials(Mailjet, users, nil)}, nil
		},
		decodePayload: decodeMailjet,
		testSettings: func(k TestKeys) config.ProviderSettings {
			return config.ProviderSettings{"basic-auth": {TestUser + ":" + k.Secret}}
		},
		testSign: func(k TestKeys, payload []byte, _ time.Time) ([]byte, http.Header) {
			return payload, http.Header{"Content-Type": {"application/json"}, "Authorization": {basicAuth(TestUser, k.Secret)}}
		},
	})
}

// mailjet receives Mailjet's event API callbacks, authenticated with HTTP
// Basic credentials in the callback URL.
type mailjet struct{ auth *credentials }

func (m *mailjet) verify(_ context.Context, req *request) error { return m.auth.check(req.header) }

type mailjetEvent struct {
	Event string `json:"event"`
	Time  text   `json:"time"`
	// QUIRK(mailjet): MessageID exceeds 2^53; read as text.
	MessageID      text   `json:"MessageID"`
	MessageGUID    string `json:"Message_GUID"`
	Email          string `json:"email"`
	ErrorRelatedTo string `json:"error_related_to"`
	Error          string `json:"error"`
	Comment        string `json:"comment"`
	HardBounce     bool   `json:"hard_bounce"`
	Source         string `json:"source"`
	SMTPReply      string `json:"smtp_reply"`
}

// mailjetErrors maps Mailjet's error names to reasons.
var mailjetErrors = map[string]parse.Reason{
	"user unknown":        parse.ReasonUserUnknown,
	"mailbox inactive":    parse.ReasonMailboxDisabled,
	"quota exceeded":      parse.ReasonMailboxFull,
	"invalid domain":      parse.ReasonDomainUnknown,
	"no mail host":        parse.ReasonDomainUnknown,
	"relay/access denied": parse.ReasonRelayDenied,
	"sender blocked":      parse.ReasonSenderRejected,
	"content blocked":     parse.ReasonPolicyRejected,
	"policy issue":        parse.ReasonPolicyRejected,
	"system issue":        parse.ReasonSystemError,
	"protocol issue":      parse.ReasonProtocolError,
	"connection issue":    parse.ReasonNetworkError,
	"greylisted":          parse.ReasonDelayed,
	"typofix":             parse.ReasonBadSyntax,
}

// mailjetBlockedMailbox are the errors of a blocked event that are about
// the recipient's address: Mailjet did not send because the address is
// known not to work.
var mailjetBlockedMailbox = map[string]bool{
	"user unknown": true, "invalid domain": true, "no mail host": true, "typofix": true,
}

func (m *mailjet) decode(req *request) (*decoded, error) { return decodeMailjet(req.body, req.now) }

func decodeMailjet(body []byte, now time.Time) (*decoded, error) {
	// QUIRK(mailjet): one event or an array of them, per the account's
	// "group events" setting.
	evs, err := decodeOneOrMany[mailjetEvent](body)
	if err != nil {
		return nil, err
	}
	d := newDecoded("events")
	for _, e := range evs {
		var ev parse.Event
		errName := strings.ToLower(strings.TrimSpace(e.Error))
		diag := strings.TrimSpace(strings.Join([]string{e.ErrorRelatedTo, e.Error, e.Comment}, " "))
		switch e.Event {
		case "bounce":
			class := parse.ClassSoft
			if e.HardBounce {
				class = parse.ClassHard
			}
			reason, ok := mailjetErrors[errName]
			if !ok {
				reason, _ = parse.ClassifyStatus("", "", diag)
			}
			switch {
			case reason.Class() == parse.ClassSender:
				class = parse.ClassSender
			case reason == parse.ReasonDelayed:
				class = parse.ClassSoft
			}
			typ := parse.EventBounce
			if reason == parse.ReasonDelayed {
				// QUIRK(mailjet): greylisting and other deferrals come as
				// "bounce" events; Mailjet tries again, so they are
				// delays, which never count toward soft suppression.
				typ, class = parse.EventDelay, parse.ClassSoft
			}
			ev = parse.VerdictEvent(typ, e.Email, reason, class, diag)
			if st, reply := parse.FindStatus(e.Comment), parse.FindReplyCode(e.Comment); st != "" || reply != "" {
				ev.Status, ev.ReplyCode = st, reply
			}
		case "blocked":
			// Mailjet did not send. Its error says why: the address is
			// known not to work (preblocked after earlier hard bounces, an
			// unknown user or domain), the recipient reported spam before,
			// the message was a duplicate, or the message or sender was
			// refused, which is not the mailbox's fault.
			switch {
			case errName == "preblocked":
				ev = parse.VerdictEvent(parse.EventBounce, e.Email, parse.ReasonUserUnknown, parse.ClassHard, diag)
			case mailjetBlockedMailbox[errName]:
				ev = parse.VerdictEvent(parse.EventBounce, e.Email, mailjetErrors[errName], parse.ClassHard, diag)
			case errName == "spam reporter":
				ev = parse.ComplaintEvent(e.Email)
				ev.Diagnostic = diag
			case errName == "duplicate in campaign":
				d.ignore(e.Event)
				continue
			default:
				ev = parse.SenderEvent(e.Email, parse.ReasonPolicyRejected, diag)
			}
		case "sent":
			// Mailjet's "sent" is the receiving server's acceptance.
			ev = parse.DeliveryEvent(e.Email, e.SMTPReply)
		case "spam":
			ev = parse.ComplaintEvent(e.Email)
		case "unsub":
			ev = parse.UnsubscribeEvent(e.Email)
		case "open", "click":
			d.ignore(e.Event)
			continue
		default:
			d.unknownType(e.Event)
			continue
		}
		ev.OccurredAt = unixTime(e.Time, now)
		ev.OriginalMessageID = e.MessageGUID
		// QUIRK(mailjet): events carry no id of their own; the event,
		// message, recipient and time together are one.
		ev.ProviderEventID = e.Event + ":" + string(e.MessageID) + ":" + parse.KeyAddress(e.Email) + ":" + string(e.Time)
		d.add(e.Event, ev)
	}
	return d, nil
}
