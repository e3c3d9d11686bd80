package webhook

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/parse"
)

// Resend is Resend's webhooks.
const Resend = "resend"

func init() {
	register(spec{
		name: Resend,
		settings: []config.WebhookSetting{
			{Name: "secrets", Usage: "Resend (Svix) signing secrets, whsec_...", Secret: true},
		},
		build: func(b *builder) (provider, error) {
			secrets := b.settings.List("secrets")
			if len(secrets) == 0 {
				return nil, nil
			}
			return newResend(secrets, b.window)
		},
		decodePayload: func(payload []byte, now time.Time) (*decoded, error) {
			return decodeResend("msg_2Lh9K5Q", payload, now)
		},
		testSettings: func(k TestKeys) config.ProviderSettings {
			return config.ProviderSettings{"secrets": {resendTestSecret(k)}}
		},
		testSign: func(k TestKeys, payload []byte, now time.Time) ([]byte, http.Header) {
			id := "msg_" + randomToken()[:24]
			key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(resendTestSecret(k), "whsec_"))
			ts := strconv.FormatInt(now.Unix(), 10)
			sig := base64.StdEncoding.EncodeToString(hmacSHA256(key, []byte(id+"."+ts+"."+string(payload))))
			// A rotated-out secret's signature comes first, as while a
			// secret is rotated.
			other := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
			return payload, http.Header{"Content-Type": {"application/json"}, "Svix-Id": {id}, "Svix-Timestamp": {ts},
				"Svix-Signature": {"v1," + other + " v1," + sig}}
		},
	})
}

// resendTestSecret is the whsec_ secret of k.
func resendTestSecret(k TestKeys) string {
	return "whsec_" + base64.StdEncoding.EncodeToString([]byte(k.Secret))
}

// resend receives Resend's webhooks, which Svix signs (the Standard
// Webhooks scheme).
type resend struct {
	secrets [][]byte
	window  time.Duration
}

func newResend(secrets []string, window time.Duration) (*resend, error) {
	r := &resend{window: window}
	for i, s := range secrets {
		// QUIRK(resend): the secret is "whsec_" and base64 of the key.
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "whsec_"))
		if err != nil || len(key) == 0 {
			return nil, fmt.Errorf("secret %d: want whsec_ followed by base64", i+1)
		}
		r.secrets = append(r.secrets, key)
	}
	return r, nil
}

// verify checks svix-signature, a space-separated list of "v1,<base64>"
// signatures (several while a secret is rotated), each HMAC-SHA256 over
// "id.timestamp.body".
func (r *resend) verify(_ context.Context, req *request) error {
	id, ts, sigs := req.header.Get("Svix-Id"), req.header.Get("Svix-Timestamp"), req.header.Get("Svix-Signature")
	if id == "" || ts == "" || sigs == "" {
		return unauthenticated(Resend, reasonMissingAuth, "the svix-id, svix-timestamp and svix-signature headers are required")
	}
	t, ok := parseUnix(ts)
	if !ok || strings.Contains(ts, ".") {
		return unauthenticated(Resend, reasonBadAuth, "svix-timestamp is not a Unix time in seconds")
	}
	if err := checkWindow(Resend, req.now, t, r.window); err != nil {
		return err
	}
	signed := make([]byte, 0, len(id)+len(ts)+len(req.body)+2)
	signed = append(append(append(append(append(signed, id...), '.'), ts...), '.'), req.body...)
	for _, key := range r.secrets {
		want := hmacSHA256(key, signed)
		for _, s := range strings.Fields(sigs) {
			version, b64, ok := strings.Cut(s, ",")
			if !ok || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err == nil && hmac.Equal(got, want) {
				req.svixID = id
				return nil
			}
		}
	}
	return unauthenticated(Resend, reasonBadAuth, "no v1 signature verifies with any configured secret")
}

type resendEvent struct {
	Type      string `json:"type"`
	CreatedAt string `json:"created_at"`
	Data      struct {
		EmailID string   `json:"email_id"`
		To      []string `json:"to"`
		Bounce  struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			SubType string `json:"subType"`
		} `json:"bounce"`
		Failed struct {
			Reason string `json:"reason"`
		} `json:"failed"`
		Suppressed struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"suppressed"`
	} `json:"data"`
}

// resendIgnored are the types that say nothing about a recipient's
// mailbox: the email's own progress, engagement, inbound mail.
var resendIgnored = map[string]bool{
	"email.sent": true, "email.opened": true, "email.clicked": true, "email.scheduled": true,
	"email.received": true,
}

func (r *resend) decode(req *request) (*decoded, error) {
	return decodeResend(req.svixID, req.body, req.now)
}

func decodeResend(svixID string, body []byte, now time.Time) (*decoded, error) {
	var e resendEvent
	if err := decodeJSON(body, &e); err != nil {
		return nil, err
	}
	d := newDecoded("events")
	// Contacts, domains and the suppression list's own changes (a bounce or
	// complaint that put an address there arrives as its own event).
	if strings.HasPrefix(e.Type, "contact.") || strings.HasPrefix(e.Type, "domain.") || strings.HasPrefix(e.Type, "suppression.") ||
		resendIgnored[e.Type] {
		d.ignore(e.Type)
		return d, nil
	}
	if !isResendEmailType(e.Type) {
		d.unknownType(e.Type)
		return d, nil
	}
	var evs []parse.Event
	for _, to := range e.Data.To {
		var ev parse.Event
		switch e.Type {
		case "email.bounced":
			ev = resendBounce(to, e.Data.Bounce.Type, e.Data.Bounce.SubType, e.Data.Bounce.Message)
			if len(e.Data.To) > 1 && ev.Class == parse.ClassHard {
				// QUIRK(resend): the event names the email's recipients,
				// not which of them bounced; none is suppressed for
				// another's fault, each is counted soft.
				ev.Class = parse.ClassSoft
			}
		case "email.suppressed":
			// Resend did not send: the address is on the account's
			// suppression list, as SES's OnAccountSuppressionList.
			ev = resendBounce(to, "Permanent", cmp.Or(e.Data.Suppressed.Type, "OnAccountSuppressionList"), e.Data.Suppressed.Message)
			if len(e.Data.To) > 1 {
				ev.Class = parse.ClassSoft
			}
		case "email.failed":
			// Resend could not send at all (quota, API key, domain
			// verification): the sending side's problem, never the
			// recipient's.
			ev = parse.RefusalEvent(to, parse.Failure{}, parse.ReasonPolicyRejected)
			ev.Diagnostic = e.Data.Failed.Reason
		case "email.delivered":
			ev = parse.DeliveryEvent(to, "")
		case "email.delivery_delayed":
			ev = parse.FailureEvent(parse.EventDelay, to, parse.Failure{FallbackReason: parse.ReasonDelayed, FallbackClass: parse.ClassSoft})
		case "email.complained":
			if len(e.Data.To) > 1 {
				d.ignore(e.Type + "/ambiguous") // same quirk: who complained is unknown
				return d, nil
			}
			ev = parse.ComplaintEvent(to)
		}
		ev.OccurredAt = rfc3339Time(e.CreatedAt, now)
		ev.OriginalMessageID = e.Data.EmailID
		// QUIRK(resend): the event's id is only in the svix-id header.
		ev.ProviderEventID = svixID
		if len(e.Data.To) > 1 {
			ev.ProviderEventID += ":" + parse.KeyAddress(to)
		}
		if svixID == "" {
			ev.ProviderEventID = parse.ProviderKey(Resend, e.Type, e.Data.EmailID, parse.KeyAddress(to), e.CreatedAt)
		}
		evs = append(evs, ev)
	}
	d.add(e.Type, evs...)
	return d, nil
}

// resendBounce is a bounce of to as Resend reports it: in SES's terms.
//
// QUIRK(resend): bounce.message is Resend's advice about the bounce type
// ("... can have a negative impact on your reputation as a sender"), not
// the remote server's words, so its words are not read; only a status or
// reply code in it would be evidence. Older events have no bounce.type:
// Resend sends email.bounced when the server "permanently rejected the
// email", so no type is Permanent.
func resendBounce(to, typ, subType, message string) parse.Event {
	reason, class := parse.SESFallback(cmp.Or(typ, "Permanent"), subType)
	ev := parse.FailureEvent(parse.EventBounce, to, parse.Failure{
		Status: string(parse.FindStatus(message)), ReplyCode: parse.FindReplyCode(message), FallbackReason: reason, FallbackClass: class,
	})
	ev.Diagnostic = message
	return ev
}

func isResendEmailType(t string) bool {
	switch t {
	case "email.bounced", "email.suppressed", "email.failed", "email.delivered", "email.delivery_delayed", "email.complained":
		return true
	}
	return false
}
