package webhook

import (
	"context"
	"github.com/bounced/bounced/internal/config"
	"net/http"
	"time"

	"github.com/bounced/bounced/internal/parse"
)

// Brevo is Brevo's (formerly Sendinblue) webhooks.
const Brevo = "brevo"

func init() {
	register(spec{
		name: Brevo,
		settings: []config.WebhookSetting{
			{Name: "basic-auth", Usage: "user:password pairs in the Brevo webhook URL", Secret: true, UserPassword: true},
			{Name: "tokens", Usage: "Brevo webhook bearer tokens", Secret: true},
		},
		build: func(b *builder) (provider, error) {
			users, tokens := b.settings.List("basic-auth"), b.settings.List("tokens")
			if len(users)+len(tokens) == 0 {
				return nil, nil
			}
			return &brevo{auth: newCredentials(Brevo, users, tokens)}, nil
		},
		decodePayload: decodeBrevo,
		testSettings: func(k TestKeys) config.ProviderSettings {
			return config.ProviderSettings{"basic-auth": {TestUser + ":" + k.Secret}}
		},
		testSign: func(k TestKeys, payload []byte, _ time.Time) ([]byte, http.Header) {
			return payload, http.Header{"Content-Type": {"application/json"}, "Authorization": {basicAuth(TestUser, k.Secret)}}
		},
	})
}

// brevo receives Brevo's (formerly Sendinblue) transactional and
// marketing webhooks, authenticated with HTTP Basic credentials in the
// URL or a bearer token.
type brevo struct{ auth *credentials }

func (b *brevo) verify(_ context.Context, req *request) error { return b.auth.check(req.header) }

type brevoEvent struct {
	Event     string `json:"event"`
	Email     string `json:"email"`
	MessageID string `json:"message-id"`
	Reason    string `json:"reason"`
	TSEvent   text   `json:"ts_event"`
	TS        text   `json:"ts"`
	TSEpoch   text   `json:"ts_epoch"`
	CampID    text   `json:"camp_id"`
}

var brevoIgnored = map[string]bool{
	"request": true, "sent": true, "click": true, "opened": true, "unique_opened": true, "proxy_open": true,
	"unique_proxy_open": true, "list_addition": true, "contact_updated": true, "contact_deleted": true,
}

func (b *brevo) decode(req *request) (*decoded, error) { return decodeBrevo(req.body, req.now) }

func decodeBrevo(body []byte, now time.Time) (*decoded, error) {
	evs, err := decodeOneOrMany[brevoEvent](body)
	if err != nil {
		return nil, err
	}
	d := newDecoded("events")
	for _, e := range evs {
		var ev parse.Event
		switch e.Event {
		case "hard_bounce":
			ev = parse.FailureEvent(parse.EventBounce, e.Email, parse.Failure{Diagnostic: e.Reason, FallbackReason: parse.ReasonUserUnknown, FallbackClass: parse.ClassHard})
		case "soft_bounce":
			ev = parse.FailureEvent(parse.EventBounce, e.Email, parse.Failure{Diagnostic: e.Reason, FallbackReason: parse.ReasonOther, FallbackClass: parse.ClassSoft})
			if ev.Class == parse.ClassHard {
				// Brevo retries soft bounces; its verdict stands.
				ev.Class = parse.ClassSoft
			}
		case "invalid_email":
			ev = parse.VerdictEvent(parse.EventBounce, e.Email, parse.ReasonBadSyntax, parse.ClassHard, e.Reason)
		case "blocked":
			// Brevo's own block list or policy refused to send ("due to
			// blacklist user": the contact is blocklisted, for a bounce,
			// an unsubscribe or a complaint it does not name).
			ev = parse.SenderEvent(e.Email, parse.ReasonPolicyRejected, e.Reason)
		case "error":
			// Brevo could not send (a template or account error): the
			// sending side's problem.
			ev = parse.RefusalEvent(e.Email, parse.Failure{Diagnostic: e.Reason}, parse.ReasonSystemError)
		case "deferred":
			ev = parse.FailureEvent(parse.EventDelay, e.Email, parse.Failure{Diagnostic: e.Reason, FallbackReason: parse.ReasonDelayed, FallbackClass: parse.ClassSoft})
		case "delivered":
			ev = parse.DeliveryEvent(e.Email, "")
		case "spam", "complaint":
			ev = parse.ComplaintEvent(e.Email)
		case "unsubscribed", "unsubscribe":
			ev = parse.UnsubscribeEvent(e.Email)
		default:
			if brevoIgnored[e.Event] {
				d.ignore(e.Event)
			} else {
				d.unknownType(e.Event)
			}
			continue
		}
		at := unixTime(e.TSEvent, now)
		if at.IsZero() {
			at = unixTime(e.TS, now)
		}
		ev.OccurredAt = at
		ev.OriginalMessageID = trimAngle(e.MessageID)
		// QUIRK(brevo): "id" is the webhook's id, the same on every event;
		// events have none, so they are keyed by a hash of their content.
		ev.ProviderEventID = parse.ProviderKey(Brevo, e.Event, parse.KeyAddress(e.Email), e.MessageID, string(e.TSEvent), string(e.TSEpoch), string(e.TS), string(e.CampID), e.Reason)
		d.add(e.Event, ev)
	}
	return d, nil
}

func trimAngle(s string) string {
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return s[1 : len(s)-1]
	}
	return s
}
