package webhook

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/parse"
)

// Generic is bounced's own documented JSON shape, for any sender that can
// compute an HMAC.
const Generic = "generic"

func init() {
	register(spec{
		name: Generic,
		settings: []config.WebhookSetting{
			{Name: "secrets", Usage: "shared secrets of the generic HMAC-SHA256 webhook", Secret: true},
		},
		build: func(b *builder) (provider, error) {
			secrets := b.settings.List("secrets")
			if len(secrets) == 0 {
				return nil, nil
			}
			return &generic{secrets: secrets}, nil
		},
		decodePayload: decodeGeneric,
		testSettings: func(k TestKeys) config.ProviderSettings {
			return config.ProviderSettings{"secrets": {k.Secret}}
		},
		testSign: func(k TestKeys, payload []byte, _ time.Time) ([]byte, http.Header) {
			return payload, http.Header{"Content-Type": {"application/json"},
				GenericSignatureHeader: {"sha256=" + hex.EncodeToString(hmacSHA256([]byte(k.Secret), payload))}}
		},
	})
}

// generic receives bounced's own documented JSON shape from any sender
// that can compute an HMAC.
type generic struct{ secrets []string }

// GenericSignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
// raw body under a shared secret.
const GenericSignatureHeader = "X-Bounced-Signature"

func (g *generic) verify(_ context.Context, req *request) error {
	h := req.header.Get(GenericSignatureHeader)
	if h == "" {
		return unauthenticated(Generic, reasonMissingAuth, "the %s header is required", GenericSignatureHeader)
	}
	hexSig, ok := strings.CutPrefix(h, "sha256=")
	if !ok {
		return unauthenticated(Generic, reasonBadAuth, "%s must be sha256=<hex>", GenericSignatureHeader)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return unauthenticated(Generic, reasonBadAuth, "the signature is not hex")
	}
	for _, s := range g.secrets {
		if hmac.Equal(hmacSHA256([]byte(s), req.body), got) {
			return nil
		}
	}
	return unauthenticated(Generic, reasonBadAuth, "the signature does not verify with any configured secret")
}

// GenericEvent is the generic webhook's JSON shape; a request carries one
// or an array of them.
type GenericEvent struct {
	// Recipient is the address the event is about (required).
	Recipient string `json:"recipient"`
	// Type is bounce (the default), delay, delivery, sent (accepted for
	// delivery, not yet delivered), complaint or unsubscribe.
	Type string `json:"type,omitempty"`
	// Status is the enhanced status code, such as 5.1.1.
	Status string `json:"status,omitempty"`
	// ReplyCode is the SMTP reply code, such as 550.
	ReplyCode string `json:"reply_code,omitempty"`
	// Diagnostic is the remote server's text.
	Diagnostic string `json:"diagnostic,omitempty"`
	// OccurredAt is an RFC 3339 time; the time of receipt when empty.
	OccurredAt string `json:"occurred_at,omitempty"`
	// ID makes the event idempotent: the same ID is recorded once. A hash
	// of the event stands in when empty.
	ID string `json:"id,omitempty"`
	// OriginalMessageID is the Message-ID of the mail the event is about.
	OriginalMessageID string `json:"original_message_id,omitempty"`
	// Scope is the list the event belongs to ("list:news",
	// "tenant:acme/list:news"), validated as every scope is; inside the
	// tenant of the credentials when they are bound to one. Empty: the
	// list of the message reported sent it names, else the credentials'
	// tenant's own list, else global.
	Scope string `json:"scope,omitempty"`
}

func (g *generic) decode(req *request) (*decoded, error) { return decodeGeneric(req.body, req.now) }

func decodeGeneric(body []byte, now time.Time) (*decoded, error) {
	evs, err := decodeOneOrMany[GenericEvent](body)
	if err != nil {
		return nil, err
	}
	d := newDecoded("events")
	for i, e := range evs {
		if strings.TrimSpace(e.Recipient) == "" {
			return nil, fmt.Errorf("event %d: recipient is required", i)
		}
		if e.Status != "" {
			if _, err := parse.ParseStatus(e.Status); err != nil {
				return nil, fmt.Errorf("event %d: status %q is not an enhanced status code such as 5.1.1", i, e.Status)
			}
		}
		var at time.Time
		if e.OccurredAt != "" {
			t, err := time.Parse(time.RFC3339Nano, e.OccurredAt)
			if err != nil {
				return nil, fmt.Errorf("event %d: occurred_at %q is not an RFC 3339 time", i, e.OccurredAt)
			}
			at = parse.PlausibleTime(t, now)
		}
		typ := e.Type
		if typ == "" {
			typ = "bounce"
		}
		var ev parse.Event
		switch typ {
		case "bounce":
			ev = parse.FailureEvent(parse.EventBounce, e.Recipient, parse.Failure{Status: e.Status, ReplyCode: e.ReplyCode, Diagnostic: e.Diagnostic,
				FallbackReason: parse.ReasonOther, FallbackClass: parse.ClassSoft})
		case "delay":
			ev = parse.FailureEvent(parse.EventDelay, e.Recipient, parse.Failure{Status: e.Status, ReplyCode: e.ReplyCode, Diagnostic: e.Diagnostic,
				FallbackReason: parse.ReasonDelayed, FallbackClass: parse.ClassSoft})
		case "delivery":
			ev = parse.DeliveryEvent(e.Recipient, "")
		case "sent":
			ev = parse.SentEvent(e.Recipient, "")
		case "complaint":
			ev = parse.ComplaintEvent(e.Recipient)
		case "unsubscribe":
			ev = parse.UnsubscribeEvent(e.Recipient)
		default:
			d.unknownType(typ)
			continue
		}
		if ev.Diagnostic == "" {
			ev.Diagnostic = e.Diagnostic
		}
		ev.OccurredAt = at
		ev.OriginalMessageID = trimAngle(e.OriginalMessageID)
		ev.Scope = e.Scope // validated, and placed in the tenant, by the receiver (attribute)
		ev.ProviderEventID = e.ID
		if ev.ProviderEventID == "" {
			parts := []string{Generic, typ, parse.KeyAddress(e.Recipient), e.Status, e.ReplyCode, e.Diagnostic, e.OccurredAt, e.OriginalMessageID}
			if e.Scope != "" {
				parts = append(parts, e.Scope) // the same event on two lists is two events
			}
			ev.ProviderEventID = parse.ProviderKey(parts...)
		}
		d.add(typ, ev)
	}
	if len(evs) == 0 {
		return nil, errors.New("no events")
	}
	return d, nil
}
