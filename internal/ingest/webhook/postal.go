package webhook

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // Postal's legacy signature is RSA-SHA1
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/parse"
)

// Postal is the webhooks of Postal mail servers.
const Postal = "postal"

func init() {
	register(spec{
		name: Postal,
		settings: []config.WebhookSetting{
			{Name: "public-keys", Usage: "Postal servers' signing public keys (base64 DER or PEM)", Credential: true},
		},
		build: func(b *builder) (provider, error) {
			keys := b.settings.List("public-keys")
			if len(keys) == 0 {
				return nil, nil
			}
			return newPostal(keys)
		},
		decodePayload: decodePostal,
		testSettings: func(k TestKeys) config.ProviderSettings {
			if k.RSA == nil {
				return nil
			}
			der, _ := x509.MarshalPKIXPublicKey(&k.RSA.PublicKey)
			return config.ProviderSettings{"public-keys": {base64.StdEncoding.EncodeToString(der)}}
		},
		testSign: func(k TestKeys, payload []byte, _ time.Time) ([]byte, http.Header) {
			d256 := sha256.Sum256(payload)
			s256, err := rsa.SignPKCS1v15(rand.Reader, k.RSA, crypto.SHA256, d256[:])
			if err != nil {
				panic(err)
			}
			d1 := sha1.Sum(payload) //nolint:gosec // Postal's legacy header
			s1, err := rsa.SignPKCS1v15(rand.Reader, k.RSA, crypto.SHA1, d1[:])
			if err != nil {
				panic(err)
			}
			return payload, http.Header{"Content-Type": {"application/json"},
				"X-Postal-Signature-256": {base64.StdEncoding.EncodeToString(s256)},
				"X-Postal-Signature":     {base64.StdEncoding.EncodeToString(s1)}}
		},
	})
}

// postal receives webhooks from Postal mail servers, signed with the
// server's RSA key.
type postal struct{ keys []*rsa.PublicKey }

func newPostal(keys []string) (*postal, error) {
	parsed, err := parseRSAKeys(keys)
	if err != nil {
		return nil, err
	}
	return &postal{keys: parsed}, nil
}

// verify checks X-Postal-Signature-256 (RSA-SHA256 of the body) and, from
// older servers that send only it, X-Postal-Signature (RSA-SHA1). When
// the SHA-256 header is present it alone decides: no downgrade.
func (p *postal) verify(_ context.Context, req *request) error {
	hash, header := crypto.SHA256, req.header.Get("X-Postal-Signature-256")
	if header == "" {
		hash, header = crypto.SHA1, req.header.Get("X-Postal-Signature")
	}
	if header == "" {
		return unauthenticated(Postal, reasonMissingAuth, "the X-Postal-Signature-256 header is required")
	}
	sig, err := base64.StdEncoding.DecodeString(header)
	if err != nil {
		return unauthenticated(Postal, reasonBadAuth, "the signature is not base64")
	}
	var digest []byte
	if hash == crypto.SHA256 {
		d := sha256.Sum256(req.body)
		digest = d[:]
	} else {
		d := sha1.Sum(req.body) //nolint:gosec // legacy Postal signature
		digest = d[:]
	}
	for _, k := range p.keys {
		if rsa.VerifyPKCS1v15(k, hash, digest, sig) == nil {
			return nil
		}
	}
	return unauthenticated(Postal, reasonBadAuth, "the signature does not verify with any configured key")
}

type postalMessage struct {
	ID        text   `json:"id"`
	MessageID string `json:"message_id"`
	To        string `json:"to"`
	Direction string `json:"direction"`
}

type postalWebhook struct {
	Event     string `json:"event"`
	Timestamp text   `json:"timestamp"`
	UUID      string `json:"uuid"`
	Payload   struct {
		Message         *postalMessage `json:"message"`
		OriginalMessage *postalMessage `json:"original_message"`
		Status          string         `json:"status"`
		Details         string         `json:"details"`
		Output          string         `json:"output"`
		Timestamp       text           `json:"timestamp"`
	} `json:"payload"`
}

var postalIgnored = map[string]bool{
	"MessageHeld": true, "MessageLinkClicked": true, "MessageLoaded": true, "DomainDNSError": true,
	"SendLimitApproaching": true, "SendLimitExceeded": true,
}

func (p *postal) decode(req *request) (*decoded, error) { return decodePostal(req.body, req.now) }

func decodePostal(body []byte, now time.Time) (*decoded, error) {
	var w postalWebhook
	if err := decodeJSON(body, &w); err != nil {
		return nil, err
	}
	d := newDecoded("events")
	pl := w.Payload
	msg := pl.Message
	diag := pl.Output
	if diag == "" {
		diag = pl.Details
	}
	var ev parse.Event
	switch w.Event {
	case "MessageSent", "MessageDelayed", "MessageDeliveryFailed":
		if msg == nil || (msg.Direction != "" && msg.Direction != "outgoing") {
			d.ignore(w.Event)
			return d, nil
		}
		switch w.Event {
		case "MessageSent":
			ev = parse.DeliveryEvent(msg.To, "")
			ev.Diagnostic = diag
		case "MessageDelayed":
			ev = parse.FailureEvent(parse.EventDelay, msg.To, parse.Failure{Diagnostic: diag, FallbackReason: parse.ReasonDelayed, FallbackClass: parse.ClassSoft})
		default:
			// Postal gave up: status HardFail for a permanent refusal;
			// its code and words decide what it was.
			class := parse.ClassHard
			if pl.Status != "" && pl.Status != "HardFail" {
				class = parse.ClassSoft
			}
			ev = parse.FailureEvent(parse.EventBounce, msg.To, parse.Failure{Diagnostic: diag, FallbackReason: parse.ReasonOther, FallbackClass: class})
		}
	case "MessageBounced":
		msg = pl.OriginalMessage
		if msg == nil {
			d.unknownType(w.Event + "/no-original")
			return d, nil
		}
		// Postal only says a bounce message came back; why is in that
		// message, which the webhook does not carry. Counted, not
		// suppressed.
		ev = parse.VerdictEvent(parse.EventBounce, msg.To, parse.ReasonOther, parse.ClassSoft, "Postal received a bounce message")
	default:
		if postalIgnored[w.Event] {
			d.ignore(w.Event)
		} else {
			d.unknownType(w.Event)
		}
		return d, nil
	}
	ev.OccurredAt = unixTime(pl.Timestamp, now)
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = unixTime(w.Timestamp, now)
	}
	ev.OriginalMessageID = trimAngle(msg.MessageID)
	ev.ProviderEventID = w.UUID
	if ev.ProviderEventID == "" {
		ev.ProviderEventID = parse.ProviderKey(Postal, w.Event, string(msg.ID), parse.KeyAddress(msg.To), string(w.Timestamp))
	}
	d.add(w.Event, ev)
	return d, nil
}
