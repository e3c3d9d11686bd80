package parse

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Amazon SES tells of bounces, complaints, deliveries and delays in one
// JSON shape, which arrives two ways: posted by SNS to the SES webhook
// (ingest/webhook hands the SNS Message to ReadSES), or mailed by SNS to
// a subscribed address (readVendorJSON below). Both read it here, once,
// into the same events.

// sesNotification is an SES notification (notificationType) or an SES
// event publishing record (eventType).
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Mail             struct {
		MessageID     string `json:"messageId"`
		CommonHeaders struct {
			MessageID string `json:"messageId"`
		} `json:"commonHeaders"`
	} `json:"mail"`
	Bounce *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
		Timestamp    string `json:"timestamp"`
		FeedbackID   string `json:"feedbackId"`
		ReportingMTA string `json:"reportingMTA"`
		RemoteMtaIP  string `json:"remoteMtaIp"`
	} `json:"bounce"`
	Complaint *struct {
		ComplainedRecipients []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
		Timestamp             string `json:"timestamp"`
		FeedbackID            string `json:"feedbackId"`
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
		UserAgent             string `json:"userAgent"`
	} `json:"complaint"`
	Delivery *struct {
		Timestamp    string   `json:"timestamp"`
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		ReportingMTA string   `json:"reportingMTA"`
		RemoteMtaIP  string   `json:"remoteMtaIp"`
	} `json:"delivery"`
	DeliveryDelay *struct {
		DelayType         string `json:"delayType"`
		DelayedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"delayedRecipients"`
		Timestamp    string `json:"timestamp"`
		ReportingMTA string `json:"reportingMTA"`
	} `json:"deliveryDelay"`
}

// sesIgnored are SES event types that say nothing about deliverability.
var sesIgnored = map[string]bool{
	"Send": true, "Reject": true, "Open": true, "Click": true, "Rendering Failure": true,
	"Subscription": true, "AmazonSnsSubscriptionSucceeded": true,
}

// SESNotice is what one SES notification says.
type SESNotice struct {
	// Type is its notificationType or eventType (Bounce, Complaint,
	// Delivery, DeliveryDelay, Open, ...); "text" for the plain-text
	// notice SNS sends when event publishing is set up.
	Type string
	// Events are what it records, in its order.
	Events []Event
	// Ignored says the type tells nothing about deliverability; Unknown
	// that SES documents no such type.
	Ignored, Unknown bool
	// Feedback is a complaint's feedback type and user agent.
	Feedback *Feedback
}

// ReadSES reads the SES JSON an SNS notification carries. snsID is the
// SNS MessageId, which keys an event when SES gives no id of its own; now
// bounds the event times (see PlausibleTime). An error means the JSON is
// not an SES notification.
func ReadSES(msg []byte, snsID string, now time.Time) (SESNotice, error) {
	if t := strings.TrimSpace(string(msg)); t == "" || t[0] != '{' {
		// QUIRK(ses): setting up event publishing sends a plain-text
		// "Successfully validated SNS topic" notification.
		return SESNotice{Type: "text", Ignored: true}, nil
	}
	var n sesNotification
	if err := json.Unmarshal(msg, &n); err != nil {
		return SESNotice{}, fmt.Errorf("SES notification: payload is not the expected JSON: %w", err)
	}
	return n.notice(snsID, now)
}

// notice derives the events of n.
func (n *sesNotification) notice(snsID string, now time.Time) (SESNotice, error) {
	typ := n.NotificationType
	if typ == "" {
		typ = n.EventType
	}
	out := SESNotice{Type: typ}
	omid := n.Mail.CommonHeaders.MessageID
	if omid == "" {
		omid = n.Mail.MessageID
	}
	add := func(ev Event, id string, at time.Time, reporting, remote string) {
		ev.ProviderEventID, ev.OccurredAt, ev.OriginalMessageID = id, at, omid
		ev.ReportingMTA, ev.RemoteMTA = stripType(reporting), remote
		out.Events = append(out.Events, ev)
	}
	switch typ {
	case "Bounce":
		b := n.Bounce
		if b == nil {
			return out, errors.New("SES Bounce notification without a bounce object")
		}
		reason, class := SESFallback(b.BounceType, b.BounceSubType)
		at := sesTime(b.Timestamp, now)
		// QUIRK(ses): only bouncedRecipients bounced; mail.destination
		// lists every recipient of the message.
		for _, r := range b.BouncedRecipients {
			diag := stripType(r.DiagnosticCode)
			if diag == "" {
				diag = strings.TrimSpace(b.BounceType + " " + b.BounceSubType)
			}
			f := Failure{Status: r.Status, Diagnostic: diag, FallbackReason: reason, FallbackClass: class}
			ev := FailureEvent(EventBounce, r.EmailAddress, f)
			ev.Evidence = sesEvidence(ev, f, b.BounceType+" "+b.BounceSubType)
			add(ev, sesEventID("b", b.FeedbackID, snsID, r.EmailAddress), at, b.ReportingMTA, b.RemoteMtaIP)
		}
	case "Complaint":
		c := n.Complaint
		if c == nil {
			return out, errors.New("SES Complaint notification without a complaint object")
		}
		ft := strings.ToLower(c.ComplaintFeedbackType)
		out.Feedback = &Feedback{Type: ft, UserAgent: c.UserAgent}
		// QUIRK(ses): an RFC 5965 "not-spam" report withdraws a complaint.
		if ft == "not-spam" {
			out.Type, out.Ignored = typ+"/not-spam", true
			return out, nil
		}
		at := sesTime(c.Timestamp, now)
		for _, r := range c.ComplainedRecipients {
			// A complaint reads as any feedback report does: an
			// auth-failure report is the sender's failure, not the
			// recipient's complaint.
			rep := &Report{Kind: KindComplaint, Recipients: []Recipient{feedbackRecipient(r.EmailAddress, ft)}}
			for _, ev := range Events(rep, time.Time{}) {
				add(ev, sesEventID("c", c.FeedbackID, snsID, r.EmailAddress), at, "", "")
			}
		}
	case "Delivery":
		dl := n.Delivery
		if dl == nil {
			return out, errors.New("SES Delivery notification without a delivery object")
		}
		at := sesTime(dl.Timestamp, now)
		for _, r := range dl.Recipients {
			ev := DeliveryEvent(r, dl.SMTPResponse)
			ev.Status, ev.ReplyCode = FindStatus(dl.SMTPResponse), FindReplyCode(dl.SMTPResponse)
			ev.Evidence = &Evidence{From: EvidenceReport, Text: "Delivery", Rule: "QUIRK(amazonses) notification type"}
			add(ev, sesEventID("d", n.Mail.MessageID, snsID, r), at, dl.ReportingMTA, dl.RemoteMtaIP)
		}
	case "DeliveryDelay":
		dd := n.DeliveryDelay
		if dd == nil {
			return out, errors.New("SES DeliveryDelay event without a deliveryDelay object")
		}
		at := sesTime(dd.Timestamp, now)
		for _, r := range dd.DelayedRecipients {
			f := Failure{Status: r.Status, Diagnostic: stripType(r.DiagnosticCode), FallbackReason: ReasonDelayed, FallbackClass: ClassSoft}
			ev := FailureEvent(EventDelay, r.EmailAddress, f)
			ev.Evidence = sesEvidence(ev, f, "DeliveryDelay "+dd.DelayType)
			add(ev, ProviderKey("ses", "delay", n.Mail.MessageID, dd.Timestamp, KeyAddress(r.EmailAddress)), at, dd.ReportingMTA, "")
		}
	case "":
		return out, errors.New("SES notification has neither notificationType nor eventType")
	default:
		out.Ignored = sesIgnored[typ]
		out.Unknown = !out.Ignored
	}
	return out, nil
}

// sesEvidence says what decided a failure SES reported: the code or
// words read from it (Classify) when they decided, else SES's own bounce
// type and subtype (verdict).
func sesEvidence(ev Event, f Failure, verdict string) *Evidence {
	st, reply := providerCodes(f.Status, f.ReplyCode, f.Diagnostic)
	if v := Classify(st, reply, f.Diagnostic); v.Reason == ev.Reason && (v.Class == ev.Class || ev.Type == EventDelay) {
		return &v.Evidence
	}
	return &Evidence{From: EvidenceVendor, Text: strings.TrimSpace(verdict), Rule: "QUIRK(amazonses) bounce type"}
}

// sesTime reads an SES timestamp (RFC 3339); zero when absent or absurd.
func sesTime(s string, now time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	return PlausibleTime(t, now)
}

// sesEventID keys an SES event by its feedback id (or message id) and
// recipient; SNS's own MessageId stands in when SES gives neither.
func sesEventID(kind, id, snsID, addr string) string {
	if id == "" {
		return ProviderKey("ses", kind, snsID, KeyAddress(addr))
	}
	return kind + ":" + id + ":" + KeyAddress(addr)
}

// SESFallback is the verdict of an SES bounce type and subtype, used when
// the recipient's status code does not say more. Resend reports bounces
// in the same terms.
func SESFallback(bounceType, subType string) (Reason, Class) {
	switch bounceType {
	case "Permanent":
		switch subType {
		case "NoEmail", "Suppressed", "OnAccountSuppressionList":
			return ReasonUserUnknown, ClassHard
		case "MailboxFull":
			return ReasonMailboxFull, ClassSoft
		case "MessageTooLarge":
			return ReasonMessageTooLarge, ClassSoft
		case "ContentRejected", "AttachmentRejected":
			return ReasonPolicyRejected, ClassSoft
		}
		return ReasonOther, ClassHard
	case "Transient":
		switch subType {
		case "MailboxFull":
			return ReasonMailboxFull, ClassSoft
		case "MessageTooLarge":
			return ReasonMessageTooLarge, ClassSoft
		case "ContentRejected", "AttachmentRejected":
			return ReasonPolicyRejected, ClassSoft
		}
	}
	return ReasonOther, ClassSoft
}

// snsEnvelope is the SNS wrapper some subscriptions mail verbatim.
type snsEnvelope struct {
	Type      string `json:"Type"`
	MessageID string `json:"MessageId"`
	Message   string `json:"Message"`
}

// readVendorJSON reads SES notifications mailed by SNS, bare or in their
// SNS envelope, into a report whose recipients carry what ReadSES derives.
func readVendorJSON(rep *Report, m *message) bool {
	body := strings.TrimSpace(m.text)
	if !strings.HasPrefix(body, "{") || !strings.Contains(body, "Type\"") {
		return false
	}
	// QUIRK(amazonses): SNS mails the JSON on one line, which relaying
	// MTAs break at 998 octets with "!" and a folded newline.
	body = strings.ReplaceAll(body, "!\n ", "")
	if end := strings.LastIndex(body, "}"); end >= 0 {
		body = body[:end+1]
	}
	var n sesNotification
	if err := json.Unmarshal([]byte(body), &n); err != nil {
		return false
	}
	snsID := ""
	if n.NotificationType == "" && n.EventType == "" {
		var env snsEnvelope
		if json.Unmarshal([]byte(body), &env) != nil || env.Message == "" || json.Unmarshal([]byte(env.Message), &n) != nil {
			return false
		}
		snsID = env.MessageID
	}
	// Without a time of receipt here, no SES time is plausible: the
	// events of a mailed notice take the time the mail was received.
	notice, err := n.notice(snsID, time.Time{})
	if err != nil || len(notice.Events) == 0 {
		return false
	}
	rep.Engine = "AmazonSES"
	rep.Feedback = notice.Feedback
	if notice.Type == "Complaint" {
		rep.Kind = KindComplaint
	}
	for _, ev := range notice.Events {
		rep.ReportingMTA, rep.OriginalMessageID = ev.ReportingMTA, ev.OriginalMessageID
		rep.Recipients = append(rep.Recipients, recipientOf(ev))
	}
	return true
}

// recipientOf is the report recipient an event stands for.
func recipientOf(ev Event) Recipient {
	addr, _ := NormalizeAddress(ev.Address)
	r := Recipient{Address: addr, Status: ev.Status, ReplyCode: ev.ReplyCode, Diagnostic: ev.Diagnostic,
		RemoteMTA: ev.RemoteMTA, Reason: ev.Reason, Class: ev.Class, Action: ActionFailed}
	if ev.Evidence != nil {
		r.Evidence = *ev.Evidence
	}
	switch ev.Type {
	case EventDelay:
		r.Action = ActionDelayed
	case EventDelivery:
		r.Action = ActionDelivered
	}
	r.Suppress = r.Class.Suppresses()
	return r
}
