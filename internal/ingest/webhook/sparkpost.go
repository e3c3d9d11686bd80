package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/bounced/bounced/internal/config"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/bounced/bounced/internal/parse"
)

// SparkPost is SparkPost's (Bird's) event webhooks.
const SparkPost = "sparkpost"

func init() {
	register(spec{
		name: SparkPost,
		settings: []config.WebhookSetting{
			{Name: "basic-auth", Usage: "user:password pairs SparkPost authenticates with", Secret: true, UserPassword: true},
			{Name: "tokens", Usage: "SparkPost webhook auth tokens (X-MessageSystems-Webhook-Token or Bearer)", Secret: true},
		},
		build: func(b *builder) (provider, error) {
			users, tokens := b.settings.List("basic-auth"), b.settings.List("tokens")
			if len(users)+len(tokens) == 0 {
				return nil, nil
			}
			return &sparkPost{auth: newCredentials(SparkPost, users, tokens, "X-MessageSystems-Webhook-Token")}, nil
		},
		decodePayload: decodeSparkPost,
		testSettings: func(k TestKeys) config.ProviderSettings {
			return config.ProviderSettings{"basic-auth": {TestUser + ":" + k.Secret}}
		},
		testSign: func(k TestKeys, payload []byte, _ time.Time) ([]byte, http.Header) {
			return payload, http.Header{"Content-Type": {"application/json"}, "Authorization": {basicAuth(TestUser, k.Secret)}}
		},
	})
}

// sparkPost receives SparkPost's batched event webhooks, authenticated
// with HTTP Basic credentials or an auth token.
type sparkPost struct{ auth *credentials }

func (s *sparkPost) verify(_ context.Context, req *request) error { return s.auth.check(req.header) }

type sparkPostEvent struct {
	Type        string `json:"type"`
	EventID     text   `json:"event_id"`
	RcptTo      string `json:"rcpt_to"`
	RawRcptTo   string `json:"raw_rcpt_to"`
	BounceClass text   `json:"bounce_class"`
	Reason      string `json:"reason"`
	RawReason   string `json:"raw_reason"`
	ErrorCode   text   `json:"error_code"`
	Timestamp   text   `json:"timestamp"`
	MessageID   text   `json:"message_id"`
	FBType      string `json:"fbtype"`
}

// sparkPostClasses maps SparkPost's bounce classification codes. Classes
// 1, 20 and 40 are SparkPost's "don't know": the status code decides.
var sparkPostClasses = map[string]struct {
	typ    parse.EventType
	reason parse.Reason
	class  parse.Class
	exact  bool // the class says more than a status code would
}{
	"1":   {parse.EventBounce, parse.ReasonOther, parse.ClassSoft, false},
	"10":  {parse.EventBounce, parse.ReasonUserUnknown, parse.ClassHard, true},
	"20":  {parse.EventBounce, parse.ReasonOther, parse.ClassSoft, false},
	"21":  {parse.EventBounce, parse.ReasonNetworkError, parse.ClassSoft, true},
	"22":  {parse.EventBounce, parse.ReasonMailboxFull, parse.ClassSoft, true},
	"23":  {parse.EventBounce, parse.ReasonMessageTooLarge, parse.ClassSoft, true},
	"24":  {parse.EventBounce, parse.ReasonNetworkError, parse.ClassSoft, true},
	"25":  {parse.EventBounce, parse.ReasonPolicyRejected, parse.ClassSender, true},
	"26":  {parse.EventBounce, parse.ReasonPolicyRejected, parse.ClassSender, true},
	"30":  {parse.EventBounce, parse.ReasonUserUnknown, parse.ClassHard, true},
	"40":  {parse.EventBounce, parse.ReasonOther, parse.ClassSoft, false},
	"50":  {parse.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft, true},
	"51":  {parse.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft, true},
	"52":  {parse.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft, true},
	"53":  {parse.EventBounce, parse.ReasonPolicyRejected, parse.ClassSoft, true},
	"54":  {parse.EventBounce, parse.ReasonRelayDenied, parse.ClassSender, true},
	"60":  {parse.EventAutoReply, parse.ReasonAutoReply, parse.ClassNone, true},
	"70":  {parse.EventDelay, parse.ReasonDelayed, parse.ClassSoft, true},
	"90":  {parse.EventUnsubscribe, parse.ReasonOther, parse.ClassNone, true},
	"100": {parse.EventAutoReply, parse.ReasonAutoReply, parse.ClassNone, true},
}

var sparkPostIgnored = map[string]bool{
	"injection": true, "open": true, "initial_open": true, "click": true, "amp_open": true, "amp_initial_open": true,
	"amp_click": true, "relay_injection": true, "relay_rejection": true, "relay_delivery": true, "relay_tempfail": true,
	"relay_permfail": true, "sms_status": true, "ab_test_completed": true, "ab_test_cancelled": true,
	"ingest_success": true, "ingest_error": true,
}

func (s *sparkPost) decode(req *request) (*decoded, error) { return decodeSparkPost(req.body, req.now) }

func decodeSparkPost(body []byte, now time.Time) (*decoded, error) {
	var batch []struct {
		Msys map[string]json.RawMessage `json:"msys"`
	}
	if err := decodeJSON(body, &batch); err != nil {
		return nil, err
	}
	d := newDecoded("events")
	for _, item := range batch {
		// QUIRK(sparkpost): creating a webhook sends [{"msys":{}}] as a
		// test and expects 200.
		for _, key := range slices.Sorted(maps.Keys(item.Msys)) {
			var e sparkPostEvent
			if err := json.Unmarshal(item.Msys[key], &e); err != nil {
				return nil, fmt.Errorf("msys.%s: %w", key, err)
			}
			if e.RcptTo == "" {
				e.RcptTo = e.RawRcptTo
			}
			ev, ok := sparkPostToEvent(e, d)
			if !ok {
				continue
			}
			ev.OccurredAt = unixTime(e.Timestamp, now)
			ev.OriginalMessageID = string(e.MessageID)
			ev.ProviderEventID = string(e.EventID)
			if ev.ProviderEventID == "" {
				ev.ProviderEventID = parse.ProviderKey(SparkPost, e.Type, parse.KeyAddress(e.RcptTo), string(e.Timestamp), string(e.MessageID))
			}
			d.add(e.Type, ev)
		}
	}
	return d, nil
}

func sparkPostToEvent(e sparkPostEvent, d *decoded) (parse.Event, bool) {
	switch e.Type {
	case "bounce", "out_of_band":
		diag := e.RawReason
		if diag == "" {
			diag = e.Reason
		}
		if e.BounceClass == "80" {
			// A subscribe request: nothing about the mailbox.
			d.ignore(e.Type)
			return parse.Event{}, false
		}
		c, ok := sparkPostClasses[string(e.BounceClass)]
		if !ok {
			c = sparkPostClasses["1"]
		}
		if c.typ != parse.EventBounce {
			ev := parse.VerdictEvent(c.typ, e.RcptTo, c.reason, c.class, diag)
			if c.typ == parse.EventDelay {
				ev = parse.FailureEvent(parse.EventDelay, e.RcptTo, parse.Failure{ReplyCode: string(e.ErrorCode), Diagnostic: diag, FallbackReason: c.reason, FallbackClass: c.class})
			}
			return ev, true
		}
		ev := parse.FailureEvent(parse.EventBounce, e.RcptTo, parse.Failure{ReplyCode: string(e.ErrorCode), Diagnostic: diag, FallbackReason: c.reason, FallbackClass: c.class})
		if c.exact && ev.Class != parse.ClassSender {
			// SparkPost read the response already; its class stands,
			// except that a code naming a sender-side error still wins.
			ev.Reason, ev.Class = c.reason, c.class
		}
		return ev, true
	case "policy_rejection", "generation_failure", "generation_rejection":
		// SparkPost did not send: its policy (a suppressed recipient, an
		// unconfigured sending domain, a rate limit) or the template
		// refused. Visible, never the mailbox's fault.
		diag := e.RawReason
		if diag == "" {
			diag = e.Reason
		}
		ev := parse.RefusalEvent(e.RcptTo, parse.Failure{ReplyCode: string(e.ErrorCode), Diagnostic: diag}, parse.ReasonPolicyRejected)
		return ev, true
	case "delay":
		return parse.FailureEvent(parse.EventDelay, e.RcptTo, parse.Failure{ReplyCode: string(e.ErrorCode), Diagnostic: e.RawReason, FallbackReason: parse.ReasonDelayed, FallbackClass: parse.ClassSoft}), true
	case "delivery":
		return parse.DeliveryEvent(e.RcptTo, ""), true
	case "spam_complaint":
		if e.FBType == "not-spam" {
			d.ignore(e.Type + "/not-spam")
			return parse.Event{}, false
		}
		return parse.ComplaintEvent(e.RcptTo), true
	case "list_unsubscribe", "link_unsubscribe":
		return parse.UnsubscribeEvent(e.RcptTo), true
	}
	if sparkPostIgnored[e.Type] {
		d.ignore(e.Type)
	} else {
		d.unknownType(e.Type)
	}
	return parse.Event{}, false
}
