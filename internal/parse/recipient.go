package parse

import "strings"

// draft is a recipient as a reader found it, with what the reader knows
// beyond the RFC 3464 fields; finish turns it into a Recipient.
type draft struct {
	Recipient
	// stage is the SMTP command the remote server answered: "conn",
	// "helo", "mail", "rcpt" or "data", or "" when the report does not say.
	stage string
	// context is more text about this recipient (the human-readable part
	// of the report): it confirms an unknown user, or speaks when the
	// diagnostic itself says nothing.
	context string
	// contextOf, when set, gives context lazily (contextText): the whole
	// report's failure lines cost a scan, and most recipients never
	// need them.
	contextOf    *textContext
	contextBlock string
	// temporary and permanent record what the report says of the failure
	// as a whole, used when no code says it.
	temporary, permanent bool
	// transientCause says a final failure came from retrying temporary
	// errors until the queue gave up: an inferred code is then 4.x.x.
	transientCause bool
	// gaveUp says the report, which has no status field, tells of a
	// final failure after retries.
	gaveUp bool
}

// finish settles status, reply code, action, reason and class.
func (d *draft) finish() Recipient {
	r := d.Recipient
	r.Diagnostic = strings.TrimSpace(r.Diagnostic)
	if r.ReplyCode == "" {
		r.ReplyCode = findFailureReply(r.Diagnostic)
		if r.ReplyCode == "" && (r.Status.Class() == 2 || r.Action == ActionDelivered || r.Action == ActionRelayed) {
			r.ReplyCode = FindReplyCode(r.Diagnostic)
		}
	}
	if inText := findFailureStatus(r.Diagnostic); inText != "" {
		// The most specific code wins: a DSN's generic X.0.0 often hides the
		// remote server's own, more precise code in the diagnostic.
		if r.Status == "" || r.Status.Generic() && inText.Class() == r.Status.Class() && !inText.Generic() {
			r.Status = inText
		}
	}
	if d.stage == "" {
		d.stage = smtpStage(r.Diagnostic)
	}
	switch r.Action {
	case ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded:
	default:
		switch {
		case r.Status.Class() == 2:
			r.Action = ActionDelivered
		case r.Status.Class() == 4 && d.temporary:
			r.Action = ActionDelayed
		default:
			r.Action = ActionFailed
		}
	}
	switch r.Action {
	case ActionDelivered, ActionRelayed, ActionExpanded:
		r.Reason, r.Class = ReasonDelivered, ClassNone
		if r.Status == "" {
			r.Status = "2.0.0"
		}
		r.Evidence = Evidence{From: EvidenceReport, Text: "action " + string(r.Action), Rule: "RFC 3464 action"}
		return r
	}

	// The report's own words matter only for an unknown user (they may
	// confirm it, or say the account is only disabled) and when the remote
	// server said nothing known: read them only then.
	st := r.Status
	madeUp := madeUpStatus(r)
	if madeUp {
		// QUIRK(sendmail): the remote server gave no enhanced code, and
		// the reporting MTA wrote one of its own from the reply code
		// (Sendmail: 5.1.1 "User unknown" for any 550 to RCPT TO, 5.2.2
		// for any 552; quirks/sendmail-made-up-status-550.eml). It says no more than
		// the reply code, so it is read as that: a convention the words
		// outrank, never proof of a dead mailbox; nor are the words it
		// wrote beside it ("550 5.1.1 <a@b>... User unknown" in its
		// transcript), so the report's own text is not read.
		st = ""
	}
	v := classify(st, r.ReplyCode, r.Diagnostic, d.stage, false)
	if !madeUp && (v.filtered || v.reason == ReasonUserUnknown || v.reason == ReasonOther) {
		context := d.contextText()
		ctx := readText(context)
		trusted := ctx.reason == ReasonUserUnknown && ctx.trusted
		if v.filtered && trusted {
			v = classify(st, r.ReplyCode, r.Diagnostic, d.stage, trusted)
		}
		if v.reason == ReasonUserUnknown && ctx.reason == ReasonMailboxDisabled && ctx.strength == strong {
			// The reporting server's own words say the account exists but
			// is switched off, which is more than the relayed answer says.
			v.reason, v.ev = ReasonMailboxDisabled, ctx.evidence()
			v.ev.From = EvidenceReport
		}
		if v.reason == ReasonOther && context != "" {
			// The remote server said nothing we know; the report's own
			// words about this recipient may.
			if cv := classify(st, r.ReplyCode, context, d.stage, trusted); cv.reason != ReasonOther {
				v = cv
				if v.ev.From == EvidencePhrase || v.ev.From == EvidenceVendor {
					v.ev.From = EvidenceReport
				}
			}
		}
	}
	if r.Action == ActionFailed && !d.transientCause && r.Status.Class() != 4 && mayBeEximExpiry(r.Diagnostic) && containsAny(eximExpiry, r.Diagnostic) {
		// QUIRK(exim): Exim's report of a retried address it gave up on
		// carries "retry timeout exceeded" after the last transient reply,
		// with a generic 5.0.0 status (quirks/exim-dsn-retry-timeout.eml).
		d.transientCause = true
	}
	inferred := r.Status == ""
	if inferred {
		r.Status = inferStatus(v.reason, r.ReplyCode, d)
	}
	r.Reason, r.Class = v.reason, classOf(v.reason, r.Status, r.ReplyCode)
	permanent := r.Status.Class() == 5 && (r.ReplyCode == "" || r.ReplyCode[0] == '5')
	r.Class, r.Evidence = gate(v, r.Class, permanent)
	switch {
	case r.Action == ActionDelayed:
		if r.Class != ClassSender || readText(r.Diagnostic).reason.Class() != ClassSender {
			// A delay is a delay, whatever its cause; only the sender's
			// own setup, when the server says so, is worth telling apart.
			r.Reason, r.Class = ReasonDelayed, ClassSoft
		}
	case r.Action == ActionFailed && r.Class != ClassSender && (d.transientCause || inferred && d.gaveUp):
		expire(&r, inferred)
	case r.Action == ActionFailed && r.Status.Class() == 4 && r.Class == ClassHard:
		// Given up on a transient reply: no proof the address is gone.
		r.Class = ClassSoft
		r.Evidence.Note = "ambiguous: the MTA gave up on a transient reply"
	}
	if madeUp {
		r.Evidence.addNote("status " + string(r.Status) + " is not in the reply, which carries no enhanced code: read as the reply code's convention")
	}
	r.Suppress = r.Class.Suppresses()
	return r
}

// madeUpStatus reports a status field that the reporting MTA made up
// from a bare reply and that the reply does not bear out: the diagnostic
// is one whole SMTP reply line (not the first line of a longer one, whose
// last line may carry the code) with the status's class and no enhanced
// code of its own, and neither its words say the status's reason nor is
// the status the reply code's own meaning with the words silent. (Where
// the words agree, as in "550 <a@b>: User unknown", the MTA's code only
// repeats them and is kept; "551 not our user" keeps 5.1.6.)
func madeUpStatus(r Recipient) bool {
	diag := r.Diagnostic
	if r.Status == "" || r.Status.Generic() || len(diag) < 5 || diag[3] != ' ' || r.ReplyCode != diag[:3] ||
		diag[0] != r.Status[0] || strings.ContainsAny(diag, "\r\n") || FindStatus(diag[4:]) != "" {
		return false
	}
	info, ok := Lookup(r.Status)
	tv := readText(diag)
	switch {
	case ok && tv.found && tv.reason == info.Reason:
		return false // the words bear it out
	case r.Status == StatusFromReply(r.ReplyCode) && !tv.found:
		return false // it is the reply code's own meaning (551: 5.1.6), and nothing says otherwise
	}
	return true
}

// mayBeEximExpiry is a quick test before the phrase scan: Exim writes
// its expiry words in lower case.
func mayBeEximExpiry(diag string) bool {
	return strings.Contains(diag, "retry timeout") || strings.Contains(diag, "for a long time")
}

// expire settles a final failure that a plain-text report (no status
// field of its own) tells came from retrying transient failures until
// the sending MTA gave up (Exim's "retry timeout exceeded", OpenSMTPD's
// expired envelope): the failure is final, so its status is 5.4.7
// (delivery time expired), while the last transient reply stays the
// remote server's words (the diagnostic, and the evidence). Nothing
// transient proves the address gone, so it is soft. A delivery status
// notification that
// gives its own Status field (Postfix's "Action: failed" with 4.4.1)
// keeps it: it is the report's own machine-readable word.
func expire(r *Recipient, inferred bool) {
	last := r.Status
	r.Reason, r.Class = ReasonExpired, ClassSoft
	r.Status = "5.4.7"
	text := strings.TrimSpace(clip(r.Diagnostic, 200))
	if !inferred {
		text = strings.TrimSpace(string(last) + " " + text)
	}
	r.Evidence = Evidence{From: EvidenceExpiry, Text: text, Rule: "final failure after transient replies",
		Note: "the sending MTA gave up retrying; the last reply was transient, so it is no proof the address is gone"}
}

// findFailureStatus returns the first failure code (4.x.x or 5.x.x) in a
// diagnostic, or else its first code: a session transcript quotes the
// "250 2.1.5 Ok" of earlier commands before the answer that failed.
func findFailureStatus(text string) Status {
	if st := statusAfterReply(text); st != "" {
		return st
	}
	first := Status("")
	for text != "" {
		st, end := findStatusAt(text)
		if st == "" {
			break
		}
		if st.Class() != 2 {
			return st
		}
		if first == "" {
			first = st
		}
		text = text[end:]
	}
	return first
}

// findFailureReply returns the first 4xx or 5xx reply code in a text.
func findFailureReply(text string) string {
	for text != "" {
		rc := FindReplyCode(text)
		if rc == "" {
			return ""
		}
		if rc[0] != '2' {
			return rc
		}
		i := strings.Index(text, rc)
		text = text[i+3:]
	}
	return ""
}

// statusAfterReply returns the first failure code written right after an
// SMTP reply code ("550 5.7.1", "550-'5.7.1", "550 #5.1.0"): the remote
// server's own code, where a relay may have put a code of its own first
// ("5.1.0 - Unknown address error 550-'5.7.1 ... Access denied'").
func statusAfterReply(text string) Status {
	for i := 0; i+4 < len(text); i++ {
		c := text[i]
		if c != '4' && c != '5' || !isDigit(text[i+1]) || !isDigit(text[i+2]) || i > 0 && (isDigit(text[i-1]) || text[i-1] == '.') {
			continue
		}
		j := i + 3
		for j < len(text) && j-i < 7 && strings.IndexByte(" -'\"#(", text[j]) >= 0 {
			j++
		}
		if j == i+3 || j >= len(text) || text[j] != c {
			continue
		}
		if j+1 < len(text) && text[j+1] == '.' {
			if st, _ := findStatusAt(text[j:min(len(text), j+12)]); st != "" && st.Class() == int(c-'0') {
				return st
			}
		}
	}
	return ""
}

// smtpStage finds which SMTP command a diagnostic answered.
func smtpStage(text string) string {
	if text == "" {
		return ""
	}
	stage := ""
	stagePhrases.scan(text, func(id int) bool {
		stage = stageNames[id] // the last command named is the one answered
		return true
	})
	return stage
}

var stageList = []struct{ phrase, stage string }{
	{"in reply to rcpt to", "rcpt"},
	{"after rcpt to", "rcpt"},
	{"our rcpt to", "rcpt"},
	{"does not like recipient", "rcpt"},
	{"rcpt to command", "rcpt"},
	{"in reply to mail from", "mail"},
	{"after mail from", "mail"},
	{"does not like sender", "mail"},
	{"in reply to end of data", "data"},
	{"after end of data", "data"},
	{"after data", "data"},
	{"in reply to data", "data"},
	{"our final data", "data"},
	{"our data", "data"},
	{"after initial connection", "conn"},
	// QUIRK(qmail): "no SMTP connection got far enough; most progress was
	// RCPT TO response".
	{"most progress was rcpt to", "rcpt"},
	{"smtp:rcpt", "rcpt"},
	// QUIRK(au): au's filter answers "550 : User unknown", naming no
	// address, at the end of DATA; at RCPT it names the address.
	{"550 : user unknown", "data"},
	{"@ezweb.ne.jp>: user unknown", "rcpt"},
	// QUIRK(messagelabs): its delivery agent reports what the remote
	// server answered to RCPT TO.
	{"this is the mail delivery agent at messagelabs.com", "rcpt"},
	{"following rcpt command", "rcpt"},
	{"following data command", "data"},
	{"following mail command", "mail"},
	// QUIRK(yahoo): Yahoo appends the command it was at: "[RCPT_TO]".
	{"[rcpt_to]", "rcpt"},
	{"[mail_from]", "mail"},
	{">>> rcpt to", "rcpt"},
	{">>> mail from", "mail"},
	{">>> data", "data"},
	// QUIRK(mfilter): m-FILTER prints "-------SMTP command" and the command.
	{"smtp command data", "data"},
	{"smtp command rcpt", "rcpt"},
	{"while connected to", ""},
	{"in reply to helo", "helo"},
	{"in reply to ehlo", "helo"},
	{"after helo", "helo"},
	{"after ehlo", "helo"},
}

var stageNames, stagePhrases = func() ([]string, *phraseSet) {
	names := make([]string, len(stageList))
	phrases := make([]string, len(stageList))
	for i, s := range stageList {
		names[i], phrases[i] = s.stage, s.phrase
	}
	return names, newPhraseSet(phrases)
}()

// inferStatus gives a recipient without any code one from RFC 3463 that
// keeps its class right: the reply code's class or what the report says,
// and the catalog's code for the reason.
func inferStatus(reason Reason, reply string, d *draft) Status {
	class := "5"
	switch {
	case len(reply) == 3 && (reply[0] == '4' || reply[0] == '5'):
		class = reply[:1]
	case d.temporary && !d.permanent, d.transientCause:
		class = "4"
	}
	sd := "0.0"
	switch reason {
	case ReasonUserUnknown:
		sd = "1.1"
	case ReasonDomainUnknown:
		sd = "1.2"
	case ReasonBadSyntax:
		sd = "1.3"
	case ReasonHasMoved:
		sd = "1.6"
	case ReasonMailboxDisabled:
		sd = "2.1"
	case ReasonMailboxFull:
		sd = "2.2"
	case ReasonMessageTooLarge:
		sd = "3.4"
	case ReasonSystemError:
		sd = "3.0"
	case ReasonNetworkError:
		sd = "4.0"
	case ReasonExpired:
		sd = "4.7"
	case ReasonRateLimited:
		sd = "7.0"
	case ReasonSpamBlocked, ReasonPolicyRejected:
		sd = "7.1"
	case ReasonRelayDenied:
		sd = "7.1"
	case ReasonAuthRequired:
		sd = "7.0"
	case ReasonAuthFailure:
		sd = "7.1"
	case ReasonProtocolError:
		sd = "5.0"
	case ReasonSenderRejected:
		sd = "1.8"
	}
	return Status(class + "." + sd)
}
