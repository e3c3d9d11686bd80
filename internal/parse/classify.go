package parse

import "strings"

// textRule maps a phrase found in a diagnostic to a reason. Rules are
// checked in order, so more specific phrases come first.
type textRule struct {
	phrase string // lower case
	reason Reason
}

// senderRules catch the sender's own configuration errors, which must win
// over any recipient reading of the same code (a 5.7.1 "relay access
// denied" is the sender's problem, not the recipient's).
var senderRules = []textRule{
	{"relay access denied", ReasonRelayDenied},
	{"relaying denied", ReasonRelayDenied},
	{"relay not permitted", ReasonRelayDenied},
	{"unable to relay", ReasonRelayDenied},
	{"relaying not allowed", ReasonRelayDenied},
	{"not permitted to relay", ReasonRelayDenied},
	{"must authenticate", ReasonAuthRequired},
	{"authentication required", ReasonAuthRequired},
	{"authentication is required", ReasonAuthRequired},
	{"smtp auth required", ReasonAuthRequired},
	{"need rcpt command", ReasonProtocolError},
	{"need mail command", ReasonProtocolError},
	{"bad sequence of commands", ReasonProtocolError},
	{"authentication failed", ReasonAuthFailure},
	{"authentication credentials invalid", ReasonAuthFailure},
}

var recipientRules = []textRule{
	{"user unknown", ReasonUserUnknown},
	{"unknown user", ReasonUserUnknown},
	{"no such user", ReasonUserUnknown},
	{"mailbox unavailable", ReasonUserUnknown},
	{"does not exist", ReasonUserUnknown},
	{"recipient address rejected", ReasonUserUnknown},
	{"host not found", ReasonDomainUnknown},
	{"domain not found", ReasonDomainUnknown},
	{"name or service not known", ReasonDomainUnknown},
	{"mailbox full", ReasonMailboxFull},
	{"over quota", ReasonMailboxFull},
	{"quota exceeded", ReasonMailboxFull},
	{"message too large", ReasonMessageTooLarge},
	{"spam", ReasonSpamBlocked},
	{"blacklist", ReasonSpamBlocked},
	{"blocklist", ReasonSpamBlocked},
	{"too many connections", ReasonRateLimited},
	{"rate limit", ReasonRateLimited},
	{"connection timed out", ReasonNetworkError},
	{"connection refused", ReasonNetworkError},
}

// senderReplies are SMTP replies that always mean the sending side erred:
// command sequence and syntax (the seeds' 503 5.5.x) and authentication.
var senderReplies = map[string]Reason{
	"500": ReasonProtocolError,
	"501": ReasonProtocolError,
	"502": ReasonProtocolError,
	"503": ReasonProtocolError,
	"504": ReasonProtocolError,
	"530": ReasonAuthRequired,
	"534": ReasonAuthFailure,
	"535": ReasonAuthFailure,
	"538": ReasonAuthRequired,
}

// ClassifyStatus returns the reason and class of a failure from its
// enhanced status st, SMTP reply code and the server's diagnostic text
// (any may be empty).
func ClassifyStatus(st Status, reply, diagnostic string) (Reason, Class) {
	if st == "" {
		st = StatusFromReply(reply)
	}
	if st.Class() == 2 {
		return ReasonDelivered, ClassNone
	}
	lower := strings.ToLower(diagnostic)
	if r, ok := matchRules(senderRules, lower); ok {
		return r, ClassSender
	}
	if r, ok := senderReplies[reply]; ok {
		return r, ClassSender
	}
	reason := ReasonOther
	if info, ok := Lookup(st); ok {
		reason = info.Reason
	}
	// A generic or unregistered code says little; the text may say more.
	if reason == ReasonOther || st.Generic() || st == "" {
		if r, ok := matchRules(recipientRules, lower); ok {
			reason = r
		}
	}
	switch st.Class() {
	case 4:
		if reason.Class() == ClassSender {
			return reason, ClassSender
		}
		if reason == ReasonDelivered {
			reason = ReasonOther
		}
		return reason, ClassSoft
	}
	if reason == ReasonDelivered {
		reason = ReasonOther
	}
	return reason, reason.Class()
}

func matchRules(rules []textRule, lower string) (Reason, bool) {
	if lower == "" {
		return "", false
	}
	for _, r := range rules {
		if strings.Contains(lower, r.phrase) {
			return r.reason, true
		}
	}
	return "", false
}
