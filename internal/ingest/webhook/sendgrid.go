package webhook

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/parse"
)

// SendGrid is Twilio SendGrid's signed Event Webhook.
const SendGrid = "sendgrid"

func init() {
	register(spec{
		name: SendGrid,
		settings: []config.WebhookSetting{
			{Name: "public-keys", Usage: "SendGrid signed event webhook verification keys", Secret: true},
		},
		build: func(b *builder) (provider, error) {
			keys := b.settings.List("public-keys")
			if len(keys) == 0 {
				return nil, nil
			}
			return newSendGrid(keys, b.window)
		},
		decodePayload: decodeSendGrid,
		testSettings: func(k TestKeys) config.ProviderSettings {
			if k.ECDSA == nil {
				return nil
			}
			der, _ := x509.MarshalPKIXPublicKey(&k.ECDSA.PublicKey)
			return config.ProviderSettings{"public-keys": {base64.StdEncoding.EncodeToString(der)}}
		},
		testSign: func(k TestKeys, payload []byte, now time.Time) ([]byte, http.Header) {
			h := http.Header{"Content-Type": {"application/json"}}
			ts := strconv.FormatInt(now.Unix(), 10)
			digest := sha256.Sum256(append([]byte(ts), payload...))
			sig, err := ecdsa.SignASN1(rand.Reader, k.ECDSA, digest[:])
			if err != nil {
				panic(err)
			}
			h.Set(sendGridTimestamp, ts)
			h.Set(sendGridSignature, base64.StdEncoding.EncodeToString(sig))
			return payload, h
		},
	})
}

// sendGrid receives SendGrid's signed Event Webhook.
type sendGrid struct {
	keys   []*ecdsa.PublicKey
	window time.Duration
}

func newSendGrid(keys []string, window time.Duration) (*sendGrid, error) {
	parsed, err := parseECDSAKeys(keys)
	if err != nil {
		return nil, err
	}
	return &sendGrid{keys: parsed, window: window}, nil
}

const (
	sendGridSignature = "X-Twilio-Email-Event-Webhook-Signature"
	sendGridTimestamp = "X-Twilio-Email-Event-Webhook-Timestamp"
)

// QUIRK(sendgrid): the signature is ECDSA P-256 over SHA-256 of the
// timestamp header followed by the body exactly as sent, trailing CRLF
// included; re-serialised JSON never verifies.
func (s *sendGrid) verify(_ context.Context, req *request) error {
	sigB64, tsText := req.header.Get(sendGridSignature), req.header.Get(sendGridTimestamp)
	if sigB64 == "" || tsText == "" {
		return unauthenticated(SendGrid, reasonMissingAuth, "the %s and %s headers are required", sendGridSignature, sendGridTimestamp)
	}
	ts, ok := parseUnix(tsText)
	if !ok {
		return unauthenticated(SendGrid, reasonBadAuth, "the signed timestamp is not a Unix time")
	}
	if err := checkWindow(SendGrid, req.now, ts, s.window); err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sigB64))
	if err != nil {
		return unauthenticated(SendGrid, reasonBadAuth, "the signature is not base64")
	}
	h := sha256.New()
	h.Write([]byte(tsText))
	h.Write(req.body)
	digest := h.Sum(nil)
	for _, k := range s.keys {
		if ecdsa.VerifyASN1(k, digest, sig) {
			return nil
		}
	}
	return unauthenticated(SendGrid, reasonBadAuth, "the signature does not verify with any configured key")
}

type sendGridEvent struct {
	Email        string `json:"email"`
	Event        string `json:"event"`
	Timestamp    text   `json:"timestamp"`
	EventID      text   `json:"sg_event_id"`
	MessageID    text   `json:"sg_message_id"`
	SMTPID       string `json:"smtp-id"`
	Reason       string `json:"reason"`
	Status       text   `json:"status"`
	Response     string `json:"response"`
	Type         string `json:"type"`
	BounceClass  string `json:"bounce_classification"`
	Attempt      text   `json:"attempt"`
	ASMGroupID   text   `json:"asm_group_id"`
	Unsubscribed text   `json:"unsubscribe"`
}

var sendGridIgnored = map[string]bool{
	"processed": true, "open": true, "click": true, "group_resubscribe": true,
}

func (s *sendGrid) decode(req *request) (*decoded, error) { return decodeSendGrid(req.body, req.now) }

func decodeSendGrid(body []byte, now time.Time) (*decoded, error) {
	var evs []sendGridEvent
	if err := decodeJSON(body, &evs); err != nil {
		return nil, err
	}
	d := newDecoded("events")
	for _, e := range evs {
		var ev parse.Event
		switch e.Event {
		case "bounce":
			// "bounce" events are hard bounces, "blocked" ones the
			// receiver's refusals, typically reputation or content; the
			// classification names the cause when the code does not.
			reason, class := parse.ReasonOther, parse.ClassHard
			if e.Type == "blocked" {
				reason, class = parse.ReasonSpamBlocked, parse.ClassSoft
			}
			if r, ok := sendGridClassifications[e.BounceClass]; ok {
				reason = r
			}
			ev = parse.FailureEvent(parse.EventBounce, e.Email, parse.Failure{
				Status: string(e.Status), Diagnostic: e.Reason, FallbackReason: reason, FallbackClass: class,
			})
		case "blocked":
			ev = parse.FailureEvent(parse.EventBounce, e.Email, parse.Failure{
				Status: string(e.Status), Diagnostic: e.Reason, FallbackReason: parse.ReasonSpamBlocked, FallbackClass: parse.ClassSoft,
			})
		case "deferred":
			ev = parse.FailureEvent(parse.EventDelay, e.Email, parse.Failure{
				Diagnostic: e.Response, FallbackReason: parse.ReasonDelayed, FallbackClass: parse.ClassSoft,
			})
		case "dropped":
			var ok bool
			if ev, ok = sendGridDropped(e); !ok {
				d.ignore(e.Event)
				continue
			}
		case "delivered":
			ev = parse.DeliveryEvent(e.Email, "")
			ev.Diagnostic = e.Response
		case "spamreport":
			ev = parse.ComplaintEvent(e.Email)
		case "unsubscribe", "group_unsubscribe":
			ev = parse.UnsubscribeEvent(e.Email)
		default:
			if sendGridIgnored[e.Event] {
				d.ignore(e.Event)
			} else {
				d.unknownType(e.Event)
			}
			continue
		}
		ev.OccurredAt = unixTime(e.Timestamp, now)
		ev.OriginalMessageID = strings.Trim(e.SMTPID, "<>")
		if ev.OriginalMessageID == "" {
			ev.OriginalMessageID = string(e.MessageID)
		}
		ev.ProviderEventID = string(e.EventID)
		if ev.ProviderEventID == "" {
			ev.ProviderEventID = parse.ProviderKey(SendGrid, e.Event, parse.KeyAddress(e.Email), string(e.Timestamp), string(e.MessageID), e.Reason)
		}
		d.add(e.Event, ev)
	}
	return d, nil
}

// sendGridClassifications maps the bounce_classification of a bounce to
// the reason used when its code and words say no more.
var sendGridClassifications = map[string]parse.Reason{
	"Invalid Address":     parse.ReasonUserUnknown,
	"Mailbox Unavailable": parse.ReasonMailboxDisabled,
	"Technical":           parse.ReasonSystemError,
	"Content":             parse.ReasonPolicyRejected,
	"Reputation":          parse.ReasonSpamBlocked,
	"Frequency or Volume": parse.ReasonRateLimited,
	"Unclassified":        parse.ReasonOther,
}

// sendGridDropped maps a message SendGrid did not send at all. Only its
// reason says why; a drop is never evidence about the mailbox, except
// that SendGrid already knows it bounced or complained.
//
// QUIRK(sendgrid): every drop has status 5.0.0, SendGrid's own code for
// "not sent" (for an address on its bounce, spam report or unsubscribe
// list as for any other drop), not a receiving server's. It is kept with
// the reason, marked as SendGrid's in the diagnostic, and never read.
func sendGridDropped(e sendGridEvent) (parse.Event, bool) {
	r := strings.ToLower(e.Reason)
	var ev parse.Event
	switch {
	case strings.Contains(r, "bounced address"):
		ev = parse.VerdictEvent(parse.EventBounce, e.Email, parse.ReasonUserUnknown, parse.ClassHard, "")
	case strings.Contains(r, "invalid"):
		ev = parse.VerdictEvent(parse.EventBounce, e.Email, parse.ReasonBadSyntax, parse.ClassHard, "")
	case strings.Contains(r, "spam reporting"):
		ev = parse.ComplaintEvent(e.Email)
	case strings.Contains(r, "unsubscribed"):
		ev = parse.UnsubscribeEvent(e.Email)
	case r == "":
		return parse.Event{}, false
	default:
		ev = parse.SenderEvent(e.Email, parse.ReasonPolicyRejected, "")
	}
	if st, err := parse.ParseStatus(string(e.Status)); err == nil {
		ev.Status = st
	}
	ev.Diagnostic = "dropped by SendGrid: " + e.Reason
	if e.Status != "" {
		ev.Diagnostic += " (status " + string(e.Status) + " is SendGrid's own, not a receiving server's)"
	}
	ev.Evidence = &parse.Evidence{From: parse.EvidenceVendor, Text: e.Reason, Rule: "QUIRK(sendgrid): dropped",
		Note: "SendGrid did not send; its status " + string(e.Status) + " is synthetic and was not read"}
	return ev, true
}
