package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/parse"
)

// Mailgun is Mailgun's JSON webhooks.
const Mailgun = "mailgun"

func init() {
	register(spec{
		name: Mailgun,
		settings: []config.WebhookSetting{
			{Name: "signing-keys", Usage: "Mailgun webhook signing keys", Secret: true},
		},
		build: func(b *builder) (provider, error) {
			keys := b.settings.List("signing-keys")
			if len(keys) == 0 {
				return nil, nil
			}
			if b.recording && b.nonces == nil {
				return nil, errors.New("the recorder cannot keep nonces, which Mailgun's signatures need")
			}
			return newMailgun(keys, b.window, b.nonces), nil
		},
		decodePayload: decodeMailgun,
		testSettings: func(k TestKeys) config.ProviderSettings {
			return config.ProviderSettings{"signing-keys": {k.Secret}}
		},
		testSign: func(k TestKeys, payload []byte, now time.Time) ([]byte, http.Header) {
			return SignMailgunTest(k.Secret, payload, now, randomToken()), http.Header{"Content-Type": {"application/json"}}
		},
	})
}

// SignMailgunTest is a Mailgun webhook body carrying payload's event-data
// (or payload itself as the event-data when it has none), signed with key
// at ts with token: for tests.
func SignMailgunTest(key string, payload []byte, ts time.Time, token string) []byte {
	var p struct {
		EventData json.RawMessage `json:"event-data"`
	}
	eventData := json.RawMessage(payload)
	if json.Unmarshal(payload, &p) == nil && len(p.EventData) > 0 {
		eventData = p.EventData
	}
	t := strconv.FormatInt(ts.Unix(), 10)
	sig, _ := json.Marshal(map[string]string{"timestamp": t, "token": token, "signature": hex.EncodeToString(hmacSHA256([]byte(key), []byte(t+token)))})
	// Spliced rather than marshalled, so a payload that is not JSON is
	// sent as it is.
	return []byte(`{"signature":` + string(sig) + `,"event-data":` + string(eventData) + `}`)
}

// randomToken is a fresh Mailgun-style token.
func randomToken() string {
	b := make([]byte, 25)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mailgun receives Mailgun's JSON webhooks.
type mailgun struct {
	keys   [][]byte
	window time.Duration
	tokens NonceClaimer
}

// maxMailgunToken bounds a token: Mailgun's are 50 characters.
const maxMailgunToken = 200

func newMailgun(keys []string, window time.Duration, tokens NonceClaimer) *mailgun {
	m := &mailgun{window: window, tokens: tokens}
	for _, k := range keys {
		m.keys = append(m.keys, []byte(k))
	}
	return m
}

type mailgunPayload struct {
	EventData *mailgunEvent `json:"event-data"`
}

type mailgunEvent struct {
	Event          string `json:"event"`
	ID             string `json:"id"`
	Timestamp      text   `json:"timestamp"`
	Severity       string `json:"severity"`
	Reason         string `json:"reason"`
	Recipient      string `json:"recipient"`
	DeliveryStatus struct {
		Code         text   `json:"code"`
		Message      string `json:"message"`
		Description  string `json:"description"`
		EnhancedCode string `json:"enhanced-code"`
		BounceCode   string `json:"bounce-code"`
		MXHost       string `json:"mx-host"`
	} `json:"delivery-status"`
	Message struct {
		Headers struct {
			MessageID string `json:"message-id"`
		} `json:"headers"`
	} `json:"message"`
	Reject struct {
		Reason      string `json:"reason"`
		Description string `json:"description"`
	} `json:"reject"`
}

// QUIRK(mailgun): the signature sits inside the JSON body and covers only
// timestamp and token, signed with the webhook signing key (not the API
// key); a token is accepted with one body only for as long as its
// timestamp is, on every replica (the claims are in PostgreSQL), so a
// captured signature cannot be lifted onto other events.
func (m *mailgun) verify(ctx context.Context, req *request) error {
	var p struct {
		Signature json.RawMessage `json:"signature"`
	}
	if err := decodeJSON(req.body, &p); err != nil {
		return malformed(Mailgun, "the body is not Mailgun's JSON webhook: %v", err)
	}
	var sig struct {
		Timestamp text   `json:"timestamp"`
		Token     string `json:"token"`
		Signature string `json:"signature"`
	}
	if len(p.Signature) == 0 || json.Unmarshal(p.Signature, &sig) != nil || sig.Token == "" || sig.Signature == "" || sig.Timestamp == "" {
		return unauthenticated(Mailgun, reasonMissingAuth, "the body has no signature object with timestamp, token and signature")
	}
	if len(sig.Token) > maxMailgunToken || strings.IndexFunc(sig.Token, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		return unauthenticated(Mailgun, reasonBadAuth, "the token is not up to %d printable ASCII characters", maxMailgunToken)
	}
	ts, ok := parseUnix(string(sig.Timestamp))
	if !ok {
		return unauthenticated(Mailgun, reasonBadAuth, "the signed timestamp is not a Unix time")
	}
	if err := checkWindow(Mailgun, req.now, ts, m.window); err != nil {
		return err
	}
	got, err := hex.DecodeString(sig.Signature)
	if err != nil {
		return unauthenticated(Mailgun, reasonBadAuth, "the signature is not hex")
	}
	msg := []byte(string(sig.Timestamp) + sig.Token)
	verified := false
	for _, k := range m.keys {
		if hmac.Equal(hmacSHA256(k, msg), got) {
			verified = true
		}
	}
	if !verified {
		return unauthenticated(Mailgun, reasonBadAuth, "the signature does not verify with any configured signing key")
	}
	if m.tokens == nil {
		return errors.New("webhook: mailgun: no nonce store")
	}
	// Remembered while either end of the window can still accept it.
	fresh, err := m.tokens.ClaimNonce(ctx, Mailgun, sig.Token, sha256.Sum256(req.body), req.now, ts.Add(m.window).Add(time.Minute))
	if err != nil {
		return fmt.Errorf("webhook: mailgun: token: %w", err)
	}
	if !fresh {
		return unauthenticated(Mailgun, reasonReplayed, "this token was already used with another payload")
	}
	return nil
}

var mailgunIgnored = map[string]bool{
	"accepted": true, "opened": true, "clicked": true, "stored": true, "list_member_uploaded": true,
	"list_member_upload_error": true, "list_uploaded": true,
}

func (m *mailgun) decode(req *request) (*decoded, error) { return decodeMailgun(req.body, req.now) }

func decodeMailgun(body []byte, now time.Time) (*decoded, error) {
	var p mailgunPayload
	if err := decodeJSON(body, &p); err != nil {
		return nil, err
	}
	d := newDecoded("events")
	e := p.EventData
	if e == nil {
		d.unknownType("(no event-data)")
		return d, nil
	}
	ds := e.DeliveryStatus
	diag := strings.TrimSpace(strings.Join([]string{ds.Message, ds.Description}, " "))
	status := ds.EnhancedCode
	if status == "" {
		status = ds.BounceCode
	}
	var ev parse.Event
	switch e.Event {
	case "failed":
		// QUIRK(mailgun): delivery-status.code is the SMTP reply, or one of
		// Mailgun's own codes for what it did not send (605 previously
		// bounced, 606 unsubscribed, 607 complained), which are no reply
		// code; severity says whether Mailgun tries again.
		switch {
		case e.Severity == "temporary" || e.Reason == "greylisted":
			ev = parse.FailureEvent(parse.EventDelay, e.Recipient, parse.Failure{
				Status: status, ReplyCode: string(ds.Code), Diagnostic: diag, FallbackReason: parse.ReasonDelayed, FallbackClass: parse.ClassSoft,
			})
			if e.Reason == "greylisted" && ev.Class != parse.ClassSender {
				ev.Reason = parse.ReasonDelayed // greylisting, whatever its code's subject
			}
		case e.Reason == "suppress-complaint" || ds.Code == "607":
			ev = parse.ComplaintEvent(e.Recipient)
			ev.Diagnostic = diag
		case e.Reason == "suppress-unsubscribe" || ds.Code == "606":
			ev = parse.UnsubscribeEvent(e.Recipient)
			ev.Diagnostic = diag
		case e.Reason == "espblock" || e.Reason == "blacklisted":
			// Mailgun's own block, or an address on its blacklist: not
			// the mailbox's fault.
			ev = parse.RefusalEvent(e.Recipient, parse.Failure{Status: status, ReplyCode: string(ds.Code), Diagnostic: diag}, parse.ReasonPolicyRejected)
		case e.Reason == "old":
			// Mailgun gave up retrying temporary failures: no proof the
			// mailbox is gone, unless a code says so.
			ev = parse.FailureEvent(parse.EventBounce, e.Recipient, parse.Failure{
				Status: status, ReplyCode: string(ds.Code), Diagnostic: diag, FallbackReason: parse.ReasonExpired, FallbackClass: parse.ClassSoft,
			})
		default:
			reason := parse.ReasonOther
			if e.Reason == "suppress-bounce" || ds.Code == "605" {
				reason = parse.ReasonUserUnknown
			}
			ev = parse.FailureEvent(parse.EventBounce, e.Recipient, parse.Failure{
				Status: status, ReplyCode: string(ds.Code), Diagnostic: diag, FallbackReason: reason, FallbackClass: parse.ClassHard,
			})
		}
	case "rejected":
		// Mailgun refused the message before trying to send it.
		ev = parse.RefusalEvent(e.Recipient, parse.Failure{Diagnostic: strings.TrimSpace(e.Reject.Reason + " " + e.Reject.Description)}, parse.ReasonPolicyRejected)
	case "delivered":
		ev = parse.DeliveryEvent(e.Recipient, "")
		ev.Diagnostic = ds.Message
	case "complained":
		ev = parse.ComplaintEvent(e.Recipient)
	case "unsubscribed":
		ev = parse.UnsubscribeEvent(e.Recipient)
	default:
		if mailgunIgnored[e.Event] {
			d.ignore(e.Event)
		} else {
			d.unknownType(e.Event)
		}
		return d, nil
	}
	ev.OccurredAt = unixTime(e.Timestamp, now)
	ev.OriginalMessageID = strings.Trim(e.Message.Headers.MessageID, "<>")
	ev.RemoteMTA = ds.MXHost
	ev.ProviderEventID = e.ID
	if ev.ProviderEventID == "" {
		ev.ProviderEventID = parse.ProviderKey(Mailgun, e.Event, parse.KeyAddress(e.Recipient), string(e.Timestamp), e.Message.Headers.MessageID)
	}
	d.add(e.Event, ev)
	return d, nil
}
