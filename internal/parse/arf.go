package parse

import "strings"

// readFeedback reads an RFC 5965 message/feedback-report body.
func readFeedback(rep *Report, body []byte) {
	rep.Kind = KindComplaint
	groups := fieldGroups(body)
	if len(groups) == 0 {
		return
	}
	g := groups[0]
	rep.ReportingMTA = stripType(get(g, "reporting-mta"))
	addr := get(g, "original-rcpt-to")
	if addr == "" && rep.Original != nil {
		addr = rep.Original.To
	}
	a, err := NormalizeAddress(addr)
	if err != nil {
		return
	}
	rep.Recipients = append(rep.Recipients, Recipient{
		Address:    a,
		Action:     ActionFailed,
		Diagnostic: strings.TrimSpace("feedback-type: " + strings.ToLower(get(g, "feedback-type"))),
		Reason:     ReasonComplaint,
		Class:      ClassComplaint,
		Suppress:   true,
	})
}
