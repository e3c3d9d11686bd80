package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

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
	typ    store.EventType
	reason parse.Reason
	class  parse.Class
	exact  bool // the class says more than a status code would
}{
	"1":   {store.EventBounce, parse.ReasonOther, parse.ClassSoft, false},
	"10":  {store.EventBounce, parse.ReasonUserUnknown, parse.ClassHard, true},
	"20":  {store.EventBounce, parse.ReasonOther, parse.ClassSoft, false},
	"21":  {store.EventBounce, parse.ReasonNetworkError, parse.ClassSoft, true},
	"22":  {store.EventBounce, parse.ReasonMailboxFull, parse.ClassSoft, true},
	"23":  {store.EventBounce, parse.ReasonMessageTooLarge, parse.ClassSoft, true},
	"24":  {store.EventBounce, parse.ReasonNetworkError, parse.ClassSoft, true},
	"25":  {store.EventBounce, parse.ReasonPolicyRejected, parse.ClassSender, true},
	"26":  {store.EventBounce, parse.ReasonPolicyRejected, parse.ClassSender, true},
	"30":  {store.EventBounce, parse.ReasonUserUnknown, parse.ClassHard, true},
	"40":  {store.EventBounce, parse.ReasonOther, parse.ClassSoft, false},
	"50":  {store.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft, true},
	"51":  {store.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft, true},
	"52":  {store.EventBounce, parse.ReasonSpamBlocked, parse.ClassSoft, true},
	"53":  {store.EventBounce, parse.ReasonPolicyRejected, parse.ClassSoft, true},
	"54":  {store.EventBounce, parse.ReasonRelayDenied, parse.ClassSender, true},
	"60":  {store.EventAutoReply, parse.ReasonAutoReply, parse.ClassNone, true},
	"70":  {store.EventDelay, parse.ReasonDelayed, parse.ClassSoft, true},
	"90":  {store.EventUnsubscribe, parse.ReasonOther, parse.ClassNone, true},
	"100": {store.EventAutoReply, parse.ReasonAutoReply, parse.ClassNone, true},
}

var sparkPostIgnored = map[string]bool{
	"injection": true, "open": true, "initial_open": true, "click": true, "amp_open": true, "amp_initial_open": true,
	"amp_click": true, "generation_failure": true, "generation_rejection": true, "policy_rejection": true,
	"relay_injection": true, "relay_rejection": true, "relay_delivery": true, "relay_tempfail": true,
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
				ev.ProviderEventID = hashID(SparkPost, e.Type, keyAddress(e.RcptTo), string(e.Timestamp), string(e.MessageID))
			}
			d.add(e.Type, ev)
		}
	}
	return d, nil
}

func sparkPostToEvent(e sparkPostEvent, d *decoded) (store.NewEvent, bool) {
	switch e.Type {
	case "bounce", "out_of_band":
		diag := e.RawReason
		if diag == "" {
			diag = e.Reason
		}
		c, ok := sparkPostClasses[string(e.BounceClass)]
		if !ok {
			c = sparkPostClasses["1"]
		}
		if c.typ != store.EventBounce {
			ev := store.NewEvent{Address: e.RcptTo, Type: c.typ, Class: c.class, Reason: c.reason, Diagnostic: diag}
			if c.typ == store.EventDelay {
				ev = bounceEvent(store.EventDelay, e.RcptTo, failure{reply: string(e.ErrorCode), diagnostic: diag, fallbackReason: c.reason, fallbackClass: c.class})
			}
			return ev, true
		}
		ev := bounceEvent(store.EventBounce, e.RcptTo, failure{reply: string(e.ErrorCode), diagnostic: diag, fallbackReason: c.reason, fallbackClass: c.class})
		if c.exact && ev.Class != parse.ClassSender {
			// SparkPost read the response already; its class stands,
			// except that a code naming a sender-side error still wins.
			ev.Reason, ev.Class = c.reason, c.class
		}
		return ev, true
	case "delay":
		return bounceEvent(store.EventDelay, e.RcptTo, failure{reply: string(e.ErrorCode), diagnostic: e.RawReason, fallbackReason: parse.ReasonDelayed, fallbackClass: parse.ClassSoft}), true
	case "delivery":
		return deliveryEvent(e.RcptTo), true
	case "spam_complaint":
		if e.FBType == "not-spam" {
			d.ignore(e.Type + "/not-spam")
			return store.NewEvent{}, false
		}
		return complaintEvent(e.RcptTo), true
	case "list_unsubscribe", "link_unsubscribe":
		return unsubscribeEvent(e.RcptTo), true
	}
	if sparkPostIgnored[e.Type] {
		d.ignore(e.Type)
	} else {
		d.unknownType(e.Type)
	}
	return store.NewEvent{}, false
}
