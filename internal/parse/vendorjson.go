package parse

import (
	"encoding/json"
	"strings"
)

// sesNotification is an Amazon SES event as SNS mails it to a
// subscribed address (a JSON body rather than a DSN).
type sesNotification struct {
	NotificationType string `json:"notificationType"`
	EventType        string `json:"eventType"`
	Bounce           *struct {
		BounceType        string `json:"bounceType"`
		BounceSubType     string `json:"bounceSubType"`
		ReportingMTA      string `json:"reportingMTA"`
		BouncedRecipients []struct {
			EmailAddress   string `json:"emailAddress"`
			Action         string `json:"action"`
			Status         string `json:"status"`
			DiagnosticCode string `json:"diagnosticCode"`
		} `json:"bouncedRecipients"`
	} `json:"bounce"`
	Complaint *struct {
		ComplaintFeedbackType string `json:"complaintFeedbackType"`
		UserAgent             string `json:"userAgent"`
		ComplainedRecipients  []struct {
			EmailAddress string `json:"emailAddress"`
		} `json:"complainedRecipients"`
	} `json:"complaint"`
	Delivery *struct {
		Recipients   []string `json:"recipients"`
		SMTPResponse string   `json:"smtpResponse"`
		ReportingMTA string   `json:"reportingMTA"`
		RemoteMtaIP  string   `json:"remoteMtaIp"`
	} `json:"delivery"`
	Mail struct {
		MessageID     string `json:"messageId"`
		CommonHeaders struct {
			MessageID string `json:"messageId"`
			Subject   string `json:"subject"`
		} `json:"commonHeaders"`
	} `json:"mail"`
}

// snsEnvelope is the SNS wrapper some subscriptions deliver verbatim.
type snsEnvelope struct {
	Type    string `json:"Type"`
	Message string `json:"Message"`
}

// readVendorJSON reads JSON notifications mailed by providers.
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
	if n.NotificationType == "" && n.EventType == "" {
		var env snsEnvelope
		if json.Unmarshal([]byte(body), &env) != nil || env.Message == "" || json.Unmarshal([]byte(env.Message), &n) != nil {
			return false
		}
	}
	typ := strings.ToLower(n.NotificationType + n.EventType)
	rep.Engine = "AmazonSES"
	rep.OriginalMessageID = n.Mail.CommonHeaders.MessageID
	switch {
	case typ == "bounce" && n.Bounce != nil:
		rep.ReportingMTA = stripType(n.Bounce.ReportingMTA)
		for _, b := range n.Bounce.BouncedRecipients {
			var d draft
			d.Address, _ = NormalizeAddress(b.EmailAddress)
			d.Action = Action(strings.ToLower(b.Action))
			d.Status, _ = ParseStatus(b.Status)
			d.Diagnostic = stripType(b.DiagnosticCode)
			// SES's own verdict: a Transient bounce is never hard.
			d.temporary = n.Bounce.BounceType == "Transient"
			d.permanent = n.Bounce.BounceType == "Permanent"
			if d.Diagnostic == "" {
				d.Diagnostic = n.Bounce.BounceType + " " + n.Bounce.BounceSubType
			}
			rep.Recipients = append(rep.Recipients, d.finish())
		}
	case typ == "complaint" && n.Complaint != nil:
		rep.Kind = KindComplaint
		ft := strings.ToLower(n.Complaint.ComplaintFeedbackType)
		rep.Feedback = &Feedback{Type: ft, UserAgent: n.Complaint.UserAgent}
		for _, c := range n.Complaint.ComplainedRecipients {
			if a, err := NormalizeAddress(c.EmailAddress); err == nil {
				rep.Recipients = append(rep.Recipients, feedbackRecipient(a, ft))
			}
		}
	case typ == "delivery" && n.Delivery != nil:
		rep.ReportingMTA = n.Delivery.ReportingMTA
		for _, a := range n.Delivery.Recipients {
			var d draft
			d.Address, _ = NormalizeAddress(a)
			d.Action = ActionDelivered
			d.Diagnostic = n.Delivery.SMTPResponse
			d.RemoteMTA = n.Delivery.RemoteMtaIP
			d.Status = FindStatus(d.Diagnostic)
			rep.Recipients = append(rep.Recipients, d.finish())
		}
	default:
		rep.Engine = ""
		return false
	}
	return len(rep.Recipients) > 0
}
