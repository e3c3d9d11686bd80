package parse

import (
	"bytes"
	"strings"
)

// field is one "Name: value" line of a delivery-status or feedback-report
// body, with the name lower-cased and continuation lines joined.
type field struct{ name, value string }

// fieldGroups splits an RFC 3464 delivery-status body into its blocks:
// the per-message fields, then one block per recipient.
func fieldGroups(body []byte) [][]field {
	var groups [][]field
	var cur []field
	for len(body) > 0 {
		line := body
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			if len(cur) > 0 {
				groups = append(groups, cur)
				cur = nil
			}
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(cur) > 0 {
			last := &cur[len(cur)-1]
			last.value += " " + string(bytes.TrimSpace(line))
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		cur = append(cur, field{
			name:  strings.ToLower(string(bytes.TrimSpace(name))),
			value: string(bytes.TrimSpace(value)),
		})
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups
}

func get(fs []field, name string) string {
	for _, f := range fs {
		if f.name == name {
			return f.value
		}
	}
	return ""
}

// stripType removes an RFC 3464 type prefix such as "dns;" or "smtp;".
func stripType(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 && i < 16 && !strings.ContainsAny(v[:i], " @<") {
		return strings.TrimSpace(v[i+1:])
	}
	return strings.TrimSpace(v)
}

func readDeliveryStatus(rep *Report, body []byte) {
	groups := fieldGroups(body)
	for i, g := range groups {
		if get(g, "final-recipient") == "" && get(g, "original-recipient") == "" {
			if i == 0 {
				rep.ReportingMTA = stripType(get(g, "reporting-mta"))
				rep.ArrivalDate = get(g, "arrival-date")
				rep.OriginalEnvelopeID = get(g, "original-envelope-id")
			}
			continue
		}
		rep.Recipients = append(rep.Recipients, recipientFrom(g))
	}
}

func recipientFrom(g []field) Recipient {
	r := Recipient{
		Action:          Action(strings.ToLower(strings.Fields(get(g, "action") + " x")[0])),
		RemoteMTA:       stripType(get(g, "remote-mta")),
		Diagnostic:      stripType(get(g, "diagnostic-code")),
		LastAttemptDate: get(g, "last-attempt-date"),
		WillRetryUntil:  get(g, "will-retry-until"),
	}
	final := get(g, "final-recipient")
	orig := get(g, "original-recipient")
	if a, err := NormalizeAddress(final); err == nil {
		r.Address = a
	}
	if a, err := NormalizeAddress(orig); err == nil {
		r.OriginalRecipient = a
		if r.Address == "" {
			r.Address = a
		}
	}
	if r.Address == "" {
		r.Address = stripType(final)
	}
	status, _ := ParseStatus(get(g, "status"))
	r.Status = status
	r.ReplyCode = FindReplyCode(r.Diagnostic)
	finishRecipient(&r)
	return r
}

// finishRecipient settles the status, action, reason and class of a
// recipient whose raw fields are filled in.
func finishRecipient(r *Recipient) {
	if inText := FindStatus(r.Diagnostic); inText != "" {
		// The most specific code wins: a DSN's generic X.0.0 often hides the
		// remote server's own, more precise code in the diagnostic.
		if r.Status == "" || r.Status.Generic() && inText.Class() == r.Status.Class() && !inText.Generic() {
			r.Status = inText
		}
	}
	if r.Status == "" && r.ReplyCode != "" {
		r.Status = StatusFromReply(r.ReplyCode)
	}
	switch r.Action {
	case ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded:
	default:
		switch r.Status.Class() {
		case 2:
			r.Action = ActionDelivered
		case 4:
			r.Action = ActionDelayed
		default:
			r.Action = ActionFailed
		}
	}
	switch r.Action {
	case ActionDelivered, ActionRelayed, ActionExpanded:
		r.Reason, r.Class = ReasonDelivered, ClassNone
	case ActionDelayed:
		reason, class := ClassifyStatus(r.Status, r.ReplyCode, r.Diagnostic)
		r.Reason, r.Class = ReasonDelayed, ClassSoft
		if class == ClassSender {
			r.Reason, r.Class = reason, class
		}
	default:
		r.Reason, r.Class = ClassifyStatus(r.Status, r.ReplyCode, r.Diagnostic)
		if r.Status == "" {
			// Keep the class right without inventing detail.
			switch r.Class {
			case ClassHard, ClassSender:
				r.Status = "5.0.0"
			default:
				r.Status = "4.0.0"
			}
		}
	}
	r.Suppress = r.Class.Suppresses()
}
