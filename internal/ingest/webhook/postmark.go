package webhook

import (
	"cmp"
	"context"
	"github.com/bounced/bounced/internal/config"
	"net/http"
	"time"

	"github.com/bounced/bounced/internal/parse"
)

// Postmark is Postmark's webhooks.
const Postmark = "postmark"

func init() {
	register(spec{
		name: Postmark,
		settings: []config.WebhookSetting{
			{Name: "basic-auth", Usage: "user:password pairs Postmark authenticates with", Secret: true, UserPassword: true},
			{Name: "tokens", Usage: "tokens Postmark sends as Authorization: Bearer or X-Bounced-Token", Secret: true},
		},
		build: func(b *builder) (provider, error) {
			users, tokens := b.settings.List("basic-auth"), b.settings.List("tokens")
			if len(users)+len(tokens) == 0 {
				return nil, nil
			}
			return &postmark{auth: newCredentials(Postmark, users, tokens, "X-Bounced-Token")}, nil
		},
		decodePayload: decodePostmark,
		testSettings: func(k TestKeys) config.ProviderSettings {
			return config.ProviderSettings{"basic-auth": {TestUser + ":" + k.Secret}}
		},
		testSign: func(k TestKeys, payload []byte, _ time.Time) ([]byte, http.Header) {
			return payload, http.Header{"Content-Type": {"application/json"}, "Authorization": {basicAuth(TestUser, k.Secret)}}
		},
	})
}

// postmark receives Postmark's webhooks, authenticated with HTTP Basic
// credentials in the webhook URL or a token in a custom header.
type postmark struct{ auth *credentials }

func (p *postmark) verify(_ context.Context, req *request) error { return p.auth.check(req.header) }

type postmarkRecord struct {
	RecordType string `json:"RecordType"`
	// QUIRK(postmark): ID exceeds 2^53; read as text, never float64.
	ID                text   `json:"ID"`
	Type              string `json:"Type"`
	Email             string `json:"Email"`
	Recipient         string `json:"Recipient"`
	BouncedAt         string `json:"BouncedAt"`
	DeliveredAt       string `json:"DeliveredAt"`
	ChangedAt         string `json:"ChangedAt"`
	Details           string `json:"Details"`
	Description       string `json:"Description"`
	MessageID         string `json:"MessageID"`
	SuppressSending   bool   `json:"SuppressSending"`
	SuppressionReason string `json:"SuppressionReason"`
	Origin            string `json:"Origin"`
}

// postmarkBounces maps Postmark's bounce types to the verdict used when
// the details carry no status code.
var postmarkBounces = map[string]struct {
	typ    parse.EventType
	reason parse.Reason
	class  parse.Class
}{
	"HardBounce":            {parse.EventBounce, parse.ReasonUserUnknown, parse.ClassHard},
	"BadEmailAddress":       {parse.EventBounce, parse.ReasonBadSyntax, parse.ClassHard},
	"AddressChange":         {parse.EventBounce, parse.ReasonHasMoved, parse.ClassHard},
	"SoftBounce":            {parse.EventBounce, parse.ReasonOther, parse.ClassSoft},
	"Transient":             {parse.EventDelay, parse.ReasonDelayed, parse.ClassSoft},
	"DnsError":              {parse.EventBounce, parse.ReasonNetworkError, parse.ClassSoft},
	"SpamNotification":      {parse.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft},
	"Blocked":               {parse.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft},
	"VirusNotification":     {parse.EventBounce, parse.ReasonPolicyRejected, parse.ClassSoft},
	"Unknown":               {parse.EventBounce, parse.ReasonOther, parse.ClassSoft},
	"SMTPApiError":          {parse.EventBounce, parse.ReasonProtocolError, parse.ClassSender},
	"DMARCPolicy":           {parse.EventBounce, parse.ReasonSenderRejected, parse.ClassSender},
	"AutoResponder":         {parse.EventAutoReply, parse.ReasonAutoReply, parse.ClassNone},
	"ChallengeVerification": {parse.EventAutoReply, parse.ReasonAutoReply, parse.ClassNone},
	"Unsubscribe":           {parse.EventUnsubscribe, parse.ReasonOther, parse.ClassNone},
	"SpamComplaint":         {parse.EventComplaint, parse.ReasonComplaint, parse.ClassComplaint},
}

// postmarkIgnoredBounces say nothing about the recipient's mailbox.
var postmarkIgnoredBounces = map[string]bool{
	"Subscribe": true, "OpenRelayTest": true, "ManuallyDeactivated": true, "Unconfirmed": true,
	"InboundError": true, "TemplateRenderingFailed": true,
}

func (p *postmark) decode(req *request) (*decoded, error) { return decodePostmark(req.body, req.now) }

func decodePostmark(body []byte, now time.Time) (*decoded, error) {
	var r postmarkRecord
	if err := decodeJSON(body, &r); err != nil {
		return nil, err
	}
	d := newDecoded("events")
	var ev parse.Event
	// A bounce's row in the README's table is its type ("Bounce/HardBounce").
	recordType := r.RecordType
	if r.RecordType == "Bounce" {
		recordType += "/" + r.Type
	}
	switch r.RecordType {
	case "Bounce", "SpamComplaint":
		m, ok := postmarkBounces[r.Type]
		switch {
		case r.RecordType == "SpamComplaint":
			ev = parse.ComplaintEvent(r.Email)
		case !ok && postmarkIgnoredBounces[r.Type]:
			d.ignore(r.RecordType + "/" + r.Type)
			return d, nil
		case !ok:
			d.unknownType(r.RecordType + "/" + r.Type)
			return d, nil
		case m.typ == parse.EventBounce || m.typ == parse.EventDelay:
			ev = parse.FailureEvent(m.typ, r.Email, parse.Failure{Diagnostic: r.Details, FallbackReason: m.reason, FallbackClass: m.class})
			if ev.Diagnostic == "" {
				ev.Diagnostic = r.Description
			}
		default:
			ev = parse.VerdictEvent(m.typ, r.Email, m.reason, m.class, r.Details)
		}
		ev.OccurredAt = rfc3339Time(r.BouncedAt, now)
		ev.ProviderEventID = string(r.ID)
		if ev.ProviderEventID == "" {
			ev.ProviderEventID = parse.ProviderKey(Postmark, r.RecordType, r.Type, parse.KeyAddress(r.Email), r.MessageID, r.BouncedAt)
		}
	case "Delivery":
		ev = parse.DeliveryEvent(r.Recipient, "")
		ev.Diagnostic = r.Details
		ev.OccurredAt = rfc3339Time(r.DeliveredAt, now)
		ev.ProviderEventID = "delivery:" + r.MessageID + ":" + parse.KeyAddress(r.Recipient)
	case "SubscriptionChange":
		// Postmark stopped (or resumed) sending to the address, for a hard
		// bounce, a spam complaint or by hand. The bounce or complaint
		// also arrives as its own record when that webhook is on; taken
		// again here, it adds to the count, and a hard bounce that says
		// less never replaces the reason the bounce gave. Resuming is
		// Postmark's business: bounced keeps its own list.
		recordType += "/" + cmp.Or(r.SuppressionReason, "Reactivated")
		switch {
		case !r.SuppressSending:
			d.ignore(recordType)
			return d, nil
		case r.SuppressionReason == "HardBounce":
			ev = parse.VerdictEvent(parse.EventBounce, r.Recipient, parse.ReasonOther, parse.ClassHard, "Postmark deactivated the address after a hard bounce")
		case r.SuppressionReason == "SpamComplaint":
			ev = parse.ComplaintEvent(r.Recipient)
		case r.SuppressionReason == "ManualSuppression":
			ev = parse.UnsubscribeEvent(r.Recipient)
		default:
			d.unknownType(recordType)
			return d, nil
		}
		ev.OccurredAt = rfc3339Time(r.ChangedAt, now)
		ev.ProviderEventID = parse.ProviderKey(Postmark, r.RecordType, parse.KeyAddress(r.Recipient), r.MessageID, r.ChangedAt)
	case "Open", "Click":
		d.ignore(r.RecordType)
		return d, nil
	default:
		d.unknownType(r.RecordType)
		return d, nil
	}
	ev.OriginalMessageID = r.MessageID
	d.add(recordType, ev)
	return d, nil
}
