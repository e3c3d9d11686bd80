package webhook

import (
	"context"
	"time"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

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
}

// postmarkBounces maps Postmark's bounce types to the verdict used when
// the details carry no status code.
var postmarkBounces = map[string]struct {
	typ    store.EventType
	reason parse.Reason
	class  parse.Class
}{
	"HardBounce":            {store.EventBounce, parse.ReasonUserUnknown, parse.ClassHard},
	"BadEmailAddress":       {store.EventBounce, parse.ReasonBadSyntax, parse.ClassHard},
	"AddressChange":         {store.EventBounce, parse.ReasonHasMoved, parse.ClassHard},
	"SoftBounce":            {store.EventBounce, parse.ReasonOther, parse.ClassSoft},
	"Transient":             {store.EventDelay, parse.ReasonDelayed, parse.ClassSoft},
	"DnsError":              {store.EventBounce, parse.ReasonNetworkError, parse.ClassSoft},
	"SpamNotification":      {store.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft},
	"Blocked":               {store.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft},
	"VirusNotification":     {store.EventBounce, parse.ReasonPolicyRejected, parse.ClassSoft},
	"Unknown":               {store.EventBounce, parse.ReasonOther, parse.ClassSoft},
	"SMTPApiError":          {store.EventBounce, parse.ReasonProtocolError, parse.ClassSender},
	"DMARCPolicy":           {store.EventBounce, parse.ReasonSenderRejected, parse.ClassSender},
	"AutoResponder":         {store.EventAutoReply, parse.ReasonAutoReply, parse.ClassNone},
	"ChallengeVerification": {store.EventAutoReply, parse.ReasonAutoReply, parse.ClassNone},
	"Unsubscribe":           {store.EventUnsubscribe, parse.ReasonOther, parse.ClassNone},
	"SpamComplaint":         {store.EventComplaint, parse.ReasonComplaint, parse.ClassComplaint},
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
	var ev store.NewEvent
	switch r.RecordType {
	case "Bounce", "SpamComplaint":
		m, ok := postmarkBounces[r.Type]
		switch {
		case r.RecordType == "SpamComplaint":
			ev = complaintEvent(r.Email)
		case !ok && postmarkIgnoredBounces[r.Type]:
			d.ignore(r.RecordType + "/" + r.Type)
			return d, nil
		case !ok:
			d.unknownType(r.RecordType + "/" + r.Type)
			return d, nil
		case m.typ == store.EventBounce || m.typ == store.EventDelay:
			ev = bounceEvent(m.typ, r.Email, failure{diagnostic: r.Details, fallbackReason: m.reason, fallbackClass: m.class})
			if ev.Diagnostic == "" {
				ev.Diagnostic = r.Description
			}
		default:
			ev = store.NewEvent{Address: r.Email, Type: m.typ, Class: m.class, Reason: m.reason, Diagnostic: r.Details}
		}
		ev.OccurredAt = rfc3339Time(r.BouncedAt, now)
		ev.ProviderEventID = string(r.ID)
		if ev.ProviderEventID == "" {
			ev.ProviderEventID = hashID(Postmark, r.RecordType, r.Type, keyAddress(r.Email), r.MessageID, r.BouncedAt)
		}
	case "Delivery":
		ev = deliveryEvent(r.Recipient)
		ev.Diagnostic = r.Details
		ev.OccurredAt = rfc3339Time(r.DeliveredAt, now)
		ev.ProviderEventID = "delivery:" + r.MessageID + ":" + keyAddress(r.Recipient)
	case "SubscriptionChange":
		// Bounces and complaints arrive as their own records; only a
		// manual suppression (an unsubscribe) is news here.
		if !r.SuppressSending || r.SuppressionReason != "ManualSuppression" {
			d.ignore(r.RecordType)
			return d, nil
		}
		ev = unsubscribeEvent(r.Recipient)
		ev.OccurredAt = rfc3339Time(r.ChangedAt, now)
		ev.ProviderEventID = hashID(Postmark, r.RecordType, keyAddress(r.Recipient), r.MessageID, r.ChangedAt)
	case "Open", "Click":
		d.ignore(r.RecordType)
		return d, nil
	default:
		d.unknownType(r.RecordType)
		return d, nil
	}
	ev.OriginalMessageID = r.MessageID
	d.add(r.RecordType, ev)
	return d, nil
}
