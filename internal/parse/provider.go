package parse

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// This file derives events from what ESPs report in their webhooks and
// notifications: a provider names the recipient and what happened, often
// with the remote server's codes and words, and always with a verdict of
// its own (hard or soft, blocked, dropped). The decoders of
// internal/ingest/webhook read each provider's format and call these.

// Failure is a failed or delayed delivery to one recipient as a provider
// reports it. FallbackReason and FallbackClass are the provider's own,
// coarser, verdict, used when no status code or diagnostic says more.
type Failure struct {
	Status, ReplyCode, Diagnostic string
	FallbackReason                Reason
	FallbackClass                 Class
}

// classify returns the status, reply code, reason and class of f: from
// the status code when there is one (so a "transient" 5.1.1 is hard, and
// a 5.5.x or 530 is the sender's problem whatever the provider called
// it), else from the diagnostic's wording, else the provider's verdict.
func (f Failure) classify() (Status, string, Reason, Class) {
	st, reply := providerCodes(f.Status, f.ReplyCode, f.Diagnostic)
	if st.Class() == 4 || st.Class() == 5 || (st == "" && reply != "" && reply[0] != '2') {
		reason, class := ClassifyStatus(st, reply, f.Diagnostic)
		permanent := st.Class() == 5 || (st == "" && reply[0] == '5')
		if reason == ReasonOther && permanent && f.FallbackClass != "" {
			// The code says no more than "failed"; the provider's verdict
			// says more.
			return st, reply, f.FallbackReason, f.FallbackClass
		}
		return st, reply, reason, class
	}
	if f.Diagnostic != "" {
		// No code: the text alone can still tell a sender-side error or
		// name a reason; the provider decides hard or soft.
		reason, class := ClassifyStatus("", "", f.Diagnostic)
		if class == ClassSender {
			return st, reply, reason, class
		}
		if reason != ReasonOther && f.FallbackClass != ClassSender {
			if f.FallbackClass == ClassHard && reason.Class() == ClassSoft {
				// The provider gave up, but the words name a passing
				// trouble (a full mailbox, a refused connection): no
				// proof the address is bad.
				return st, reply, reason, ClassSoft
			}
			return st, reply, reason, f.FallbackClass
		}
	}
	return st, reply, f.FallbackReason, f.FallbackClass
}

// providerCodes finds the enhanced status and SMTP reply code of a
// failure from the provider's fields and, failing those, its diagnostic
// text.
func providerCodes(status, reply, diagnostic string) (Status, string) {
	st, err := ParseStatus(status)
	if err != nil {
		st = FindStatus(diagnostic)
	}
	reply = strings.TrimSpace(reply)
	if len(reply) != 3 || !isDigits(reply) || reply[0] < '2' || reply[0] > '5' {
		reply = FindReplyCode(diagnostic)
	}
	return st, reply
}

// FailureEvent is a bounce (typ EventBounce) or a delay (EventDelay) of
// address as a provider reports it.
func FailureEvent(typ EventType, address string, f Failure) Event {
	st, reply, reason, class := f.classify()
	if typ == EventDelay {
		// A delay never suppresses, whatever its code, but a sender-side
		// error stays visible as one.
		if class != ClassSender {
			class = ClassSoft
			if reason == ReasonOther || reason.Class() == ClassHard {
				reason = ReasonDelayed
			}
		}
	}
	return Event{Address: address, Type: typ, Class: class, Reason: reason, Status: st, ReplyCode: reply,
		Diagnostic: f.Diagnostic}
}

// VerdictEvent is an event of address on the provider's word alone, for
// what no code or wording can be read from (an address the provider
// refuses to send to, its own bounce categories).
func VerdictEvent(typ EventType, address string, reason Reason, class Class, diagnostic string) Event {
	return Event{Address: address, Type: typ, Class: class, Reason: reason, Diagnostic: diagnostic}
}

// DeliveryEvent is a delivery to address; diagnostic is the receiving
// server's answer, when the provider passes it on.
func DeliveryEvent(address, diagnostic string) Event {
	return Event{Address: address, Type: EventDelivery, Class: ClassNone, Reason: ReasonDelivered, Diagnostic: diagnostic}
}

// SentEvent is a message to address the provider accepted for delivery;
// diagnostic is what it said, if anything.
func SentEvent(address, diagnostic string) Event {
	return Event{Address: address, Type: EventSent, Class: ClassNone, Reason: ReasonOther, Diagnostic: diagnostic}
}

// ComplaintEvent is a spam complaint by address.
func ComplaintEvent(address string) Event {
	return Event{Address: address, Type: EventComplaint, Class: ClassComplaint, Reason: ReasonComplaint}
}

// UnsubscribeEvent is address unsubscribing.
func UnsubscribeEvent(address string) Event {
	return Event{Address: address, Type: EventUnsubscribe, Class: ClassNone, Reason: ReasonOther}
}

// SenderEvent is a failure that is the sending side's doing (the
// provider's own block or policy): visible, never suppressing.
func SenderEvent(address string, reason Reason, diagnostic string) Event {
	return VerdictEvent(EventBounce, address, reason, ClassSender, diagnostic)
}

// RefusalEvent is a message to address the provider refused to send (its
// own policy, block list or an error on the sending side): the codes and
// words are kept, and it never suppresses. The reason is what the codes
// or words name when that is a sending-side reason, else fallback.
func RefusalEvent(address string, f Failure, fallback Reason) Event {
	ev := FailureEvent(EventBounce, address, f)
	if ev.Class != ClassSender {
		ev.Reason, ev.Class = fallback, ClassSender
	}
	return ev
}

// ProviderKey is the idempotency key of an event whose provider gives
// none: a hash of its fields (KeyAddress for the address), so the same
// event delivered twice gets the same key and different events do not.
func ProviderKey(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return "h:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// KeyAddress is the comparable form of an address for provider keys: its
// AddressKey, or the lower-cased text when it is not an address.
func KeyAddress(addr string) string {
	if n, err := NormalizeAddress(addr); err == nil {
		return AddressKey(n)
	}
	return strings.ToLower(strings.TrimSpace(addr))
}

// PlausibleTime keeps a provider's event time unless it is missing or
// absurd (before 2000, or more than a day after now); zero makes the
// store use the time of receipt.
func PlausibleTime(t, now time.Time) time.Time {
	if t.IsZero() || t.Year() < 2000 || t.After(now.Add(24*time.Hour)) {
		return time.Time{}
	}
	return t.UTC()
}
