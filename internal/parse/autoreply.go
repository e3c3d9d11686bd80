package parse

import "strings"

// autoReplySubjects are subjects of vacation and out-of-office replies,
// in the languages they are commonly sent in.
var autoReplySubjects = newPhraseSet([]string{
	"automatic reply", "auto reply", "auto-reply", "autoreply", "autorespons", "auto response",
	"auto-response", "automated response", "out of office", "out of the office", "away from the office",
	"away until", "on vacation", "vacation", "abwesenheit", "automatische antwort", "réponse automatique",
	"respuesta automática", "respuesta automatica", "risposta automatica", "resposta automática",
	"automatisch antwoord", "autosvar", "自動応答", "自動返信", "不在",
})

// challengePhrases mark challenge-response systems asking the sender to
// prove it is human: an automatic reply, not a failure.
var challengePhrases = newPhraseSet([]string{
	"please confirm that you are a human", "verify that you are a human", "confirm your email address to complete",
	"sender verification", "spam arrest", "spamarrest", "boxbe", "mailinblack", "challenge-response",
	"to have your message delivered, please", "i use a spam filter", "please click the link below to confirm",
})

// listNoticePhrases mark mailing-list notices that are not failures: a
// post held for a moderator, a subscription confirmation.
var listNoticePhrases = newPhraseSet([]string{
	"awaiting moderator approval", "awaits moderator approval", "held for moderation", "is being held until",
	"requires approval", "pending moderation", "confirm your subscription", "subscription confirmation",
	"welcome to the", "you have been subscribed",
})

// readAutoReply recognises RFC 3834 automatic responses, vacation and
// out-of-office replies, challenge-response requests and mailing-list
// notices. None is a bounce: each names its sender as the one recipient,
// delivered, so a store counts it as proof the address is alive.
func readAutoReply(rep *Report, m *message) bool {
	if m.looksLikeBounce() && !m.top.has("List-Id") {
		return false
	}
	as := strings.ToLower(m.top.get("Auto-Submitted"))
	engine := ""
	switch {
	case strings.HasPrefix(as, "auto-replied"):
		engine = "RFC3834"
	case m.top.has("X-Autoreply") || m.top.has("X-Autorespond") || m.top.has("X-Autoresponder") ||
		m.top.has("X-Auto-Reply") || m.top.has("X-Vacation"):
		engine = "RFC3834"
	case strings.EqualFold(m.top.get("Precedence"), "auto_reply"):
		engine = "RFC3834"
	case containsAny(autoReplySubjects, m.subject) &&
		(as != "" || m.top.has("X-Auto-Response-Suppress") || m.top.has("X-MS-Exchange-Inbox-Rules-Loop") ||
			strings.TrimSpace(m.top.get("Return-Path")) == "<>" || containsAny(autoReplySubjects, firstLines(m.text, 5))):
		engine = "RFC3834"
	case containsAny(challengePhrases, m.subject) || containsAny(challengePhrases, clip(m.text, 4096)):
		engine = "challenge"
	case m.top.has("List-Id") && (containsAny(listNoticePhrases, m.subject) || containsAny(listNoticePhrases, clip(m.text, 4096))):
		engine = "list"
	default:
		return false
	}
	hits := findAddrs(m.top.get("From"))
	if len(hits) == 0 {
		return false
	}
	rep.Engine = engine
	rep.Kind = KindAutoReply
	rep.Recipients = append(rep.Recipients, Recipient{
		Address:    hits[0].addr,
		Action:     ActionDelivered,
		Diagnostic: clip(m.subject, 200),
		Reason:     ReasonAutoReply,
		Class:      ClassNone,
		Evidence:   Evidence{From: EvidenceReport, Text: engine, Rule: "automatic reply (" + engine + ")"},
	})
	return true
}
