package parse

import "strings"

// Feedback is what an RFC 5965 abuse report says about itself.
type Feedback struct {
	Type             string `json:"type"` // abuse, fraud, virus, other, not-spam, auth-failure, opt-out
	UserAgent        string `json:"user_agent,omitempty"`
	SourceIP         string `json:"source_ip,omitempty"`
	OriginalMailFrom string `json:"original_mail_from,omitempty"`
	ReportedDomain   string `json:"reported_domain,omitempty"`
	AuthFailure      string `json:"auth_failure,omitempty"` // RFC 6591: dkim, spf, dmarc, ...
}

// readFeedback reads an RFC 5965 message/feedback-report. Each
// Original-Rcpt-To is a recipient (an opt-out report's Removal-Recipient,
// else the returned message's To, when there is none).
func readFeedback(rep *Report, m *message) {
	rep.Kind = KindComplaint
	var g []field
	for _, grp := range fieldGroups(m.feedback.text()) {
		g = append(g, grp...)
	}
	fb := &Feedback{
		Type:             strings.ToLower(firstWord(get(g, "feedback-type"))),
		UserAgent:        get(g, "user-agent"),
		SourceIP:         get(g, "source-ip"),
		OriginalMailFrom: get(g, "original-mail-from"),
		ReportedDomain:   get(g, "reported-domain"),
		AuthFailure:      strings.ToLower(get(g, "auth-failure")),
	}
	if a, err := NormalizeAddress(fb.OriginalMailFrom); err == nil {
		fb.OriginalMailFrom = a
	}
	rep.Feedback = fb
	rep.ReportingMTA = stripType(get(g, "reporting-mta"))
	rep.ArrivalDate = get(g, "arrival-date")
	if rep.ArrivalDate == "" {
		rep.ArrivalDate = get(g, "received-date")
	}
	rep.OriginalEnvelopeID = get(g, "original-envelope-id")

	var addrs []string
	for _, f := range g {
		if f.name == "original-rcpt-to" || f.name == "removal-recipient" {
			if a, err := NormalizeAddress(f.value); err == nil {
				addrs = append(addrs, a)
			}
		}
	}
	if len(addrs) == 0 && m.hasOrig {
		for _, h := range findAddrs(m.original.get("To")) {
			addrs = append(addrs, h.addr)
		}
	}
	for _, a := range addrs {
		rep.Recipients = append(rep.Recipients, feedbackRecipient(a, fb.Type))
	}
}

// feedbackRecipient classifies one complained-about address by the
// report's feedback type. A "not-spam" report says the mail was wanted
// and an "auth-failure" report (RFC 6591) blames the sender's SPF, DKIM
// or DMARC setup: neither is the recipient's complaint, and neither
// suppresses.
func feedbackRecipient(addr, feedbackType string) Recipient {
	r := Recipient{
		Address:    addr,
		Action:     ActionFailed,
		Diagnostic: strings.TrimSpace("feedback-type: " + feedbackType),
		Reason:     ReasonComplaint,
		Class:      ClassComplaint,
		Evidence:   Evidence{From: EvidenceFeedback, Text: feedbackType, Rule: "RFC 5965 feedback type"},
	}
	switch feedbackType {
	case "not-spam":
		r.Action, r.Reason, r.Class = ActionDelivered, ReasonDelivered, ClassNone
	case "auth-failure", "dkim", "spf", "dmarc":
		r.Reason, r.Class = ReasonAuthFailure, ClassSender
	}
	r.Suppress = r.Class.Suppresses()
	return r
}

// readUnsubscribe reads complaints that come without an RFC 5965 report:
// the unsubscribe requests mail clients send on the user's behalf, and
// Microsoft's junk mail reports.
func readUnsubscribe(rep *Report, m *message) bool {
	if readJMRP(rep, m) {
		return true
	}
	// QUIRK(apple): Apple Mail's "Unsubscribe" button mails the
	// List-Unsubscribe address with X-Apple-Unsubscribe: true.
	if !strings.EqualFold(m.top.get("X-Apple-Unsubscribe"), "true") {
		return false
	}
	hits := findAddrs(m.top.get("From"))
	if len(hits) == 0 {
		return false
	}
	rep.Engine = "unsubscribe"
	rep.Kind = KindComplaint
	rep.Feedback = &Feedback{Type: "opt-out", UserAgent: "Apple Mail"}
	rep.Recipients = append(rep.Recipients, feedbackRecipient(hits[0].addr, "opt-out"))
	return true
}

// readJMRP reads a complaint of Microsoft's Junk Mail Reporting Program.
// QUIRK(hotmail): Outlook.com forwards the reported message whole, under
// the subject "complaint about message from <IP>", with the complaining
// address in X-HmXmrOriginalRecipient.
func readJMRP(rep *Report, m *message) bool {
	if !m.hasOrig || !m.original.has("X-HmXmrOriginalRecipient") ||
		!strings.Contains(strings.ToLower(m.subject), "complaint about message from") {
		return false
	}
	addr, err := NormalizeAddress(m.original.get("X-HmXmrOriginalRecipient"))
	if err != nil {
		return false
	}
	rep.Engine = "JMRP"
	rep.Kind = KindComplaint
	rep.Feedback = &Feedback{Type: "abuse", UserAgent: "JMRP", SourceIP: m.original.get("X-Reporter-IP")}
	rep.Recipients = append(rep.Recipients, feedbackRecipient(addr, "abuse"))
	return true
}
