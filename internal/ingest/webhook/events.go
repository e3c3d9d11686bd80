package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// text is a JSON value providers send as a string or as a number (ids,
// codes, timestamps). Numbers keep their exact digits: Postmark's ID and
// Mailjet's MessageID exceed 2^53, which float64 would round.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return errors.New("empty value")
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*t = text(n)
	case string(b) == "null":
		*t = ""
	default:
		return fmt.Errorf("want a string or a number, got %.20s", b)
	}
	return nil
}

// decodeJSON reads exactly one JSON value (json.Unmarshal refuses data
// after it).
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("payload is not the expected JSON: %w", err)
	}
	return nil
}

// decodeOneOrMany reads a JSON array of T, or a single T, as some
// providers send either depending on an account setting.
func decodeOneOrMany[T any](b []byte) ([]T, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var many []T
		err := decodeJSON(b, &many)
		return many, err
	}
	var one T
	if err := decodeJSON(b, &one); err != nil {
		return nil, err
	}
	return []T{one}, nil
}

// hashID is the idempotency key of an event whose provider gives none:
// a hash of its normalised fields, so the same event delivered twice gets
// the same key and different events do not.
func hashID(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	return "h:" + hex.EncodeToString(h.Sum(nil)[:16])
}

// plausible keeps a provider's event time unless it is missing or absurd;
// zero makes the store use the time of receipt.
func plausible(t, now time.Time) time.Time {
	if t.IsZero() || t.Year() < 2000 || t.After(now.Add(24*time.Hour)) {
		return time.Time{}
	}
	return t.UTC()
}

func unixTime(s text, now time.Time) time.Time {
	t, ok := parseUnix(string(s))
	if !ok {
		return time.Time{}
	}
	return plausible(t, now)
}

func rfc3339Time(s string, now time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	return plausible(t, now)
}

// codes finds the enhanced status and SMTP reply code of a failure from
// the provider's fields and, failing those, its diagnostic text.
func codes(status, reply, diagnostic string) (parse.Status, string) {
	st, err := parse.ParseStatus(status)
	if err != nil {
		st = parse.FindStatus(diagnostic)
	}
	reply = strings.TrimSpace(reply)
	if len(reply) != 3 || !allDigits(reply) || reply[0] < '2' || reply[0] > '5' {
		reply = parse.FindReplyCode(diagnostic)
	}
	return st, reply
}

// failure is a failed or delayed delivery to one recipient as a provider
// reports it; fallback is the provider's own, coarser, verdict used when
// no status code or diagnostic says more.
type failure struct {
	status, reply, diagnostic string
	fallbackReason            parse.Reason
	fallbackClass             parse.Class
}

// classify returns the reason and class of f: from the status code when
// there is one (so a "transient" 5.1.1 is hard, and a 5.5.x or 530 is
// the sender's problem whatever the provider called it), else from the
// diagnostic's wording, else the provider's verdict.
func (f failure) classify() (parse.Status, string, parse.Reason, parse.Class) {
	st, reply := codes(f.status, f.reply, f.diagnostic)
	if st.Class() == 4 || st.Class() == 5 || (st == "" && reply != "" && reply[0] != '2') {
		reason, class := parse.ClassifyStatus(st, reply, f.diagnostic)
		permanent := st.Class() == 5 || (st == "" && reply[0] == '5')
		if reason == parse.ReasonOther && permanent && f.fallbackClass != "" {
			// The code says no more than "failed"; the provider's verdict
			// says more.
			return st, reply, f.fallbackReason, f.fallbackClass
		}
		return st, reply, reason, class
	}
	if f.diagnostic != "" {
		// No code: the text alone can still tell a sender-side error or
		// name a reason; the provider decides hard or soft.
		reason, class := parse.ClassifyStatus("", "", f.diagnostic)
		if class == parse.ClassSender {
			return st, reply, reason, class
		}
		if reason != parse.ReasonOther && f.fallbackClass != parse.ClassSender {
			return st, reply, reason, f.fallbackClass
		}
	}
	return st, reply, f.fallbackReason, f.fallbackClass
}

// bounceEvent builds a bounce (or, with typ, a delay) from a failure.
func bounceEvent(typ store.EventType, address string, f failure) store.NewEvent {
	st, reply, reason, class := f.classify()
	if typ == store.EventDelay {
		// A delay never suppresses, whatever its code, but a sender-side
		// error stays visible as one.
		if class != parse.ClassSender {
			class = parse.ClassSoft
			if reason == parse.ReasonOther || reason.Class() == parse.ClassHard {
				reason = parse.ReasonDelayed
			}
		}
	}
	return store.NewEvent{
		Address: address, Type: typ, Class: class, Reason: reason, Status: st, ReplyCode: reply,
		Diagnostic: f.diagnostic,
	}
}

func deliveryEvent(address string) store.NewEvent {
	return store.NewEvent{Address: address, Type: store.EventDelivery, Class: parse.ClassNone, Reason: parse.ReasonDelivered}
}

func complaintEvent(address string) store.NewEvent {
	return store.NewEvent{Address: address, Type: store.EventComplaint, Class: parse.ClassComplaint, Reason: parse.ReasonComplaint}
}

func unsubscribeEvent(address string) store.NewEvent {
	return store.NewEvent{Address: address, Type: store.EventUnsubscribe, Class: parse.ClassNone, Reason: parse.ReasonOther}
}

// senderEvent records a failure that is the sending side's doing (the
// provider's own block or policy): visible, never suppressing.
func senderEvent(address string, reason parse.Reason, diagnostic string) store.NewEvent {
	return store.NewEvent{Address: address, Type: store.EventBounce, Class: parse.ClassSender, Reason: reason, Diagnostic: diagnostic}
}

// keyAddress is the comparable form of an address for idempotency keys.
func keyAddress(addr string) string {
	if n, err := parse.NormalizeAddress(addr); err == nil {
		return parse.AddressKey(n)
	}
	return strings.ToLower(strings.TrimSpace(addr))
}
