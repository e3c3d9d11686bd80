package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // Mandrill signs with HMAC-SHA1 by specification
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/parse"
)

// Mandrill is Mandrill's (Mailchimp Transactional) webhooks.
const Mandrill = "mandrill"

// MandrillTestURL is the webhook URL test requests are signed for.
const MandrillTestURL = "https://bounced.example.net/v1/webhooks/mandrill"

func init() {
	register(spec{
		name: Mandrill,
		// QUIRK(mandrill): Mandrill checks a webhook URL with HEAD before
		// saving it.
		probe: true,
		settings: []config.WebhookSetting{
			{Name: "keys", Usage: "Mandrill webhook keys", Secret: true},
			{Name: "urls", Usage: "webhook URLs exactly as entered at Mandrill (they are signed)"},
		},
		check: func(s config.ProviderSettings) error {
			if len(s.List("keys")) > 0 && len(s.List("urls")) == 0 {
				return errors.New("webhook-mandrill-urls: needed with webhook-mandrill-keys (Mandrill signs the URL)")
			}
			return nil
		},
		build: func(b *builder) (provider, error) {
			keys := b.settings.List("keys")
			if len(keys) == 0 {
				return nil, nil
			}
			return &mandrill{keys: keys, urls: b.settings.List("urls")}, nil
		},
		decodePayload: func(payload []byte, now time.Time) (*decoded, error) {
			return decodeMandrill([]byte("mandrill_events="+url.QueryEscape(string(payload))), now)
		},
		testSettings: func(k TestKeys) config.ProviderSettings {
			return config.ProviderSettings{"keys": {k.Secret}, "urls": {MandrillTestURL}}
		},
		testSign: func(k TestKeys, payload []byte, _ time.Time) ([]byte, http.Header) {
			form := url.Values{"mandrill_events": {string(payload)}}
			return []byte(form.Encode()), http.Header{
				"Content-Type":    {"application/x-www-form-urlencoded"},
				mandrillSignature: {SignMandrillTest(k.Secret, MandrillTestURL, form)},
			}
		},
	})
}

// SignMandrillTest is the X-Mandrill-Signature of form posted to
// webhookURL under key: for tests.
func SignMandrillTest(key, webhookURL string, form url.Values) string {
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write([]byte(webhookURL))
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range form[name] {
			mac.Write([]byte(name + v))
		}
	}
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// mandrill receives Mandrill's (Mailchimp Transactional) webhooks.
type mandrill struct {
	keys []string
	urls []string
}

const mandrillSignature = "X-Mandrill-Signature"

// QUIRK(mandrill): the signature is base64 HMAC-SHA1 of the webhook URL
// exactly as configured at Mandrill followed by each POST field's name
// and value, fields sorted by name; the URL bounced sees may differ
// behind a proxy, so the configured URLs are what is signed.
func (m *mandrill) verify(_ context.Context, req *request) error {
	got := req.header.Get(mandrillSignature)
	if got == "" {
		return unauthenticated(Mandrill, reasonMissingAuth, "the %s header is required", mandrillSignature)
	}
	form, err := url.ParseQuery(string(req.body))
	if err != nil {
		return malformed(Mandrill, "the body is not a form: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(got)
	if err != nil {
		return unauthenticated(Mandrill, reasonBadAuth, "the signature is not base64")
	}
	for _, key := range m.keys {
		for _, u := range m.urls {
			if hmac.Equal(mandrillSign(key, u, form), sig) {
				return nil
			}
		}
	}
	return unauthenticated(Mandrill, reasonBadAuth, "the signature does not verify with any configured key and URL")
}

func mandrillSign(key, webhookURL string, form url.Values) []byte {
	mac := hmac.New(sha1.New, []byte(key))
	mac.Write([]byte(webhookURL))
	for _, name := range slices.Sorted(maps.Keys(form)) {
		for _, v := range form[name] {
			mac.Write([]byte(name))
			mac.Write([]byte(v))
		}
	}
	return mac.Sum(nil)
}

type mandrillEvent struct {
	Event string `json:"event"`
	Type  string `json:"type"` // sync events
	ID    string `json:"_id"`
	TS    text   `json:"ts"`
	Msg   struct {
		Email             string `json:"email"`
		State             string `json:"state"`
		BounceDescription string `json:"bounce_description"`
		Diag              string `json:"diag"`
		ID                string `json:"_id"`
		SMTPEvents        []struct {
			TS   text   `json:"ts"`
			Type string `json:"type"`
			Diag string `json:"diag"`
		} `json:"smtp_events"`
	} `json:"msg"`
}

// deferralDiag is what the remote server said of a deferred message.
//
// QUIRK(mandrill): a deferral's msg.diag is often empty; each delivery
// attempt is in msg.smtp_events, the latest last, with the server's reply
// in its diag.
func (e *mandrillEvent) deferralDiag() string {
	if e.Msg.Diag != "" {
		return e.Msg.Diag
	}
	for i := len(e.Msg.SMTPEvents) - 1; i >= 0; i-- {
		if se := e.Msg.SMTPEvents[i]; se.Diag != "" && (se.Type == "deferred" || se.Type == "") {
			return se.Diag
		}
	}
	return ""
}

// mandrillBounces maps Mandrill's bounce_description.
var mandrillBounces = map[string]parse.Reason{
	"bad_mailbox":     parse.ReasonUserUnknown,
	"invalid_domain":  parse.ReasonDomainUnknown,
	"mailbox_full":    parse.ReasonMailboxFull,
	"spam_related":    parse.ReasonSpamBlocked,
	"policy_related":  parse.ReasonPolicyRejected,
	"unreachable":     parse.ReasonNetworkError,
	"routing_failed":  parse.ReasonNetworkError,
	"invalid_address": parse.ReasonBadSyntax,
}

func (m *mandrill) decode(req *request) (*decoded, error) { return decodeMandrill(req.body, req.now) }

func decodeMandrill(body []byte, now time.Time) (*decoded, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	raw, ok := form["mandrill_events"]
	if !ok || len(raw) != 1 {
		return nil, errors.New("the form has no single mandrill_events field")
	}
	var evs []mandrillEvent
	if err := decodeJSON([]byte(raw[0]), &evs); err != nil {
		return nil, err
	}
	d := newDecoded("events")
	for _, e := range evs {
		addr := e.Msg.Email
		var ev parse.Event
		switch e.Event {
		case "hard_bounce", "soft_bounce":
			reason, ok := mandrillBounces[e.Msg.BounceDescription]
			if !ok {
				reason = parse.ReasonOther
			}
			class := parse.ClassHard
			if e.Event == "soft_bounce" {
				class = parse.ClassSoft
			}
			ev = parse.FailureEvent(parse.EventBounce, addr, parse.Failure{Diagnostic: e.Msg.Diag, FallbackReason: reason, FallbackClass: class})
			if e.Event == "soft_bounce" && ev.Class == parse.ClassHard {
				ev.Class = parse.ClassSoft // Mandrill retries it
			}
		case "deferral":
			ev = parse.FailureEvent(parse.EventDelay, addr, parse.Failure{Diagnostic: e.deferralDiag(), FallbackReason: parse.ReasonDelayed, FallbackClass: parse.ClassSoft})
		case "reject":
			// Mandrill's own rejection list or rules refused to send.
			ev = parse.SenderEvent(addr, parse.ReasonPolicyRejected, e.Msg.Diag)
		case "send":
			// Mandrill accepted the message for delivery; it has not been
			// delivered (Mandrill tells no delivery), so it is recorded as
			// sent and resets no counter.
			ev = parse.SentEvent(addr, "")
		case "spam":
			ev = parse.ComplaintEvent(addr)
		case "unsub":
			ev = parse.UnsubscribeEvent(addr)
		case "open", "click":
			d.ignore(e.Event)
			continue
		case "":
			if e.Type != "" { // sync events: rejection and allow list changes
				d.ignore("sync/" + e.Type)
				continue
			}
			d.unknownType("")
			continue
		default:
			d.unknownType(e.Event)
			continue
		}
		ev.OccurredAt = unixTime(e.TS, now)
		msgID := e.ID
		if msgID == "" {
			msgID = e.Msg.ID
		}
		ev.OriginalMessageID = msgID
		// QUIRK(mandrill): the documentation's sample batch gives every event
		// the same _id; the event, time and recipient tell them apart.
		ev.ProviderEventID = e.Event + ":" + msgID + ":" + string(e.TS) + ":" + parse.KeyAddress(addr)
		d.add(e.Event, ev)
	}
	return d, nil
}
