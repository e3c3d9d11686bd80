package parse

import (
	"slices"
	"strings"
)

// Plain-text bounces (no RFC 3464 part) from Exim, qmail, Sendmail V5,
// Exchange 2003, Lotus Domino, mobile carriers and many others share a
// shape: a few lines of prose, then each failed address on a line of its
// own (or after a short lead-in such as "Unknown user:"), followed by what
// the remote server said, then the returned message. textReport finds that
// shape without knowing the vendor; vendor quirks only add markers.

// maxBlockLines and maxBlockText cap what is read after one address.
const (
	maxBlockLines = 16
	maxBlockText  = 2048
)

// block is the text a report gives about one failed address.
type block struct {
	addr  string // normalised
	start int    // line of the address
	text  string // what follows the address, up to the next one
}

type textReport struct {
	text      string
	lines     []string
	failures  *string // failureLines, once computed
	blocks    []block
	senders   map[string]bool // address keys that are never recipients
	temporary bool            // the report is a delay warning
	permanent bool            // the report says the failure is permanent
}

// splitReturned cuts a report's text where the returned message starts.
func splitReturned(text string) (report, returned string) {
	cut := len(text)
	// An unannounced header block: "Received:" or "Return-Path:" at the
	// start of a paragraph.
	for _, h := range []string{"\n\nReceived: ", "\n\nReturn-Path: ", "\n\nReturn-path: "} {
		if i := strings.Index(text[:cut], h); i >= 0 {
			cut = i + 2
		}
	}
	after := cut
	returnedMarkers.scanAt(text[:min(cut, len(text))], func(_, end int) bool {
		// A marker line is short: look no further than that for its ends,
		// so a long line full of markers stays linear.
		lo := max(0, end-maxMarkerLine)
		start := strings.LastIndexByte(text[lo:end], '\n')
		if start < 0 && lo > 0 {
			return true
		}
		start += lo + 1
		hi := min(len(text), end+maxMarkerLine)
		stop := strings.IndexByte(text[end:hi], '\n')
		switch {
		case stop >= 0:
			stop += end
		case hi == len(text):
			stop = len(text)
		default:
			return true
		}
		if !isReturnedMarker(text[start:stop]) {
			return true
		}
		cut, after = start, min(stop+1, len(text))
		return false
	})
	return text[:cut], text[after:]
}

var returnedMarkers = newPhraseSet([]string{
	"this is a copy of the message",
	"this is a copy of your message",
	"copy of the message, including all the headers",
	"header of the original message is following",
	"headers of the original message",
	"message headers follow",
	"original message follows",
	"original message header",
	"original mail as follows",
	"enclosed is a copy of the message",
	"below this line is a copy of the message",
	"----- original message -----",
	"------ original message ------",
	"--- original message ---",
	"original message:",
	"content-type: message/rfc822",
	"returned mail follows",
	"the original message was",
	"unsent message below",
	"this is the original message",
	"original message headers",
	"here is a copy of the first part of the message",
	"====================================end",
	"unsent message follows",
	"--- below this line is the original message",
	"------ failed message header -----",
	"------- original message -------",
	"----- the header of the original message is following. -----",
})

// maxMarkerLine bounds the length of a line announcing the returned
// message.
const maxMarkerLine = 160

// isReturnedMarker reports a line announcing the returned message. The
// phrase must fill most of the line, so prose mentioning it does not cut.
func isReturnedMarker(line string) bool {
	t := strings.TrimSpace(line)
	if len(t) < 12 || len(t) > 120 {
		return false
	}
	core := len(strings.Trim(t, "-=_*:. "))
	found := false
	returnedMarkers.scan(t, func(id int) bool {
		found = returnedMarkers.phrases[id].n*5 >= core*2
		return !found
	})
	return found
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// addrHit is one address found in a line.
type addrHit struct {
	start, end int    // the token in the line, brackets included
	addr       string // normalised
}

func isLocalByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80 ||
		strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0
}

func isDomainByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c >= 0x80 || c == '-' || c == '.'
}

// findAddrs returns the mail addresses in a line, in order.
func findAddrs(line string) []addrHit {
	var hits []addrHit
	from := 0
	for {
		i := strings.IndexByte(line[from:], '@')
		if i < 0 {
			return hits
		}
		at := from + i
		s := at
		for s > 0 && isLocalByte(line[s-1]) {
			s--
		}
		for s < at && (line[s] == '.' || line[s] == '\'' || line[s] == '/') {
			s++
		}
		e := at + 1
		for e < len(line) && isDomainByte(line[e]) {
			e++
		}
		for e > at+1 && (line[e-1] == '.' || line[e-1] == '-') {
			e--
		}
		from = max(e, at+1)
		local, domain := line[s:at], line[at+1:e]
		if local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") {
			continue
		}
		addr, err := NormalizeAddress(line[s:e])
		if err != nil {
			continue
		}
		ts, te := s, e
		if ts > 0 && te < len(line) && (line[ts-1] == '<' && line[te] == '>' || line[ts-1] == '"' && line[te] == '"' || line[ts-1] == '\'' && line[te] == '\'' || line[ts-1] == '(' && line[te] == ')' || line[ts-1] == '[' && line[te] == ']') {
			ts, te = ts-1, te+1
		}
		hits = append(hits, addrHit{start: ts, end: te, addr: addr})
	}
}

// leadIns end the text before an address that names a failed recipient.
var leadIns = []string{
	"rcpt to:", "rcpt to", "recipient:", "recipients:", "recipient address:", "address:", "addresses:",
	"original-recipient:", "final-recipient:", "final-recipient: rfc822;", "original-recipient: rfc822;",
	"rfc822;", "delivering your mail to", "delivery to", "deliver to", "delivered to",
	"deliver mail to", "be delivered to", "not delivered to", "undeliverable to", "failed to",
	"unknown user:", "user unknown:", "attempts:", "exceeds allowed size:", "mailbox:",
	"failed recipient:", "failed address:", "to recipient", "for recipient", "your message to",
	"message to", "the following address", ">>>", "error for", "to the following recipient",
	"rejected recipient", "permanent errors:", "temporary errors:", "errors:", "could not be delivered to:",
	"duplicated message-id in", "following recipient:", "following recipients:", "following address:",
	"unable to send to", "could not send to", "couldn't send to", "无法发送到",
}

// notLeadIns are header-like lead-ins whose address is never a failed
// recipient: the sender, the report's own addresses, message ids.
var notLeadIns = []string{
	"from:", "mail from:", "mail from", "sender:", "reply-to:", "return-path:", "envelope-from",
	"message-id:", "in-reply-to:", "references:", "to:", "cc:", "by ", "from <", "sent by",
	"mailto:", "id ", "smtp.mailfrom", "header.from", "envelope sender",
}

// newTextReport reads the recipient blocks of a report's text.
func newTextReport(text string, senders map[string]bool) *textReport {
	t := &textReport{text: text, senders: senders}
	t.lines = strings.Split(text, "\n")
	type anchor struct {
		line      int
		addr      string
		rest      string
		replyLine bool
	}
	var anchors []anchor
	// mentions are the lines that start a stretch of text about an
	// anchor: its own line, and a later line that names it alone (the
	// administrators' section of an Exchange NDR names each recipient
	// again above its server's reply).
	type mention struct{ line, anchor int }
	var mentions []mention
	seen := map[string]int{} // address key -> index in anchors
	// The sender's own address is a recipient only when nothing else is
	// (a message to oneself): find the others first.
	var selfAnchors []anchor
	for i, line := range t.lines {
		if strings.IndexByte(line, '@') < 0 {
			continue
		}
		for _, h := range findAddrs(line) {
			key := AddressKey(h.addr)
			kind, rest := isAnchor(line, h)
			if kind == noAnchor {
				continue
			}
			if senders[key] {
				if len(selfAnchors) == 0 && strings.TrimSpace(line[:h.start]) == "" {
					selfAnchors = append(selfAnchors, anchor{line: i, addr: h.addr, rest: rest})
				}
				continue
			}
			if j, dup := seen[key]; dup {
				// A second mention (a session transcript, a summary) adds
				// to the first block rather than starting one.
				if len(anchors[j].rest) < maxBlockText {
					anchors[j].rest += " " + strings.TrimSpace(rest)
				}
				if kind == lineAnchor && strings.TrimSpace(rest) == "" {
					mentions = append(mentions, mention{line: i, anchor: j})
				}
				break
			}
			if kind == replyAnchor {
				rest = precedingReplies(t.lines, i) + rest
			}
			seen[key] = len(anchors)
			mentions = append(mentions, mention{line: i, anchor: len(anchors)})
			anchors = append(anchors, anchor{line: i, addr: h.addr, rest: rest, replyLine: kind == replyAnchor})
			break
		}
	}
	if len(anchors) == 0 {
		anchors = selfAnchors
		mentions = mentions[:0]
		for k, a := range anchors {
			mentions = append(mentions, mention{line: a.line, anchor: k})
		}
	}
	if len(anchors) == 1 {
		// One recipient: everything after it is about it.
		mentions = mentions[:1]
	}
	texts := make([]strings.Builder, len(anchors))
	for k, a := range anchors {
		texts[k].WriteString(strings.TrimSpace(a.rest))
	}
	for k, mn := range mentions {
		a := anchors[mn.anchor]
		end := len(t.lines)
		if k+1 < len(mentions) {
			end = mentions[k+1].line
		}
		b := &texts[mn.anchor]
		n := 0
		prev := strings.TrimSpace(t.lines[mn.line])
		blank := false
		for j := mn.line + 1; j < end && n < maxBlockLines; j++ {
			raw := t.lines[j]
			l := strings.TrimSpace(raw)
			if l == "" {
				blank = true
				continue
			}
			indented := raw[0] == ' ' || raw[0] == '\t'
			// A transcript verdict ("554 <user@example.com>... Host unknown")
			// says all on its line; indented lines continue it.
			if a.replyLine && !indented {
				break
			}
			// After an empty line, only a heading ("because:", "The
			// response was:") or indented text still belongs here.
			if blank && !indented && !strings.HasSuffix(prev, ":") && !strings.HasSuffix(l, ":") {
				break
			}
			if isBoilerplate(l) || b.Len() > maxBlockText {
				break
			}
			b.WriteByte(' ')
			b.WriteString(l)
			n++
			prev, blank = l, false
		}
	}
	for k, a := range anchors {
		t.blocks = append(t.blocks, block{addr: a.addr, start: a.line, text: clip(strings.TrimSpace(texts[k].String()), maxBlockText)})
	}
	return t
}

// maxLeadIn bounds the text read before an address on its line.
const maxLeadIn = 96

// Kinds of anchor lines.
const (
	noAnchor    = iota
	lineAnchor  // the address alone, or after a lead-in
	replyAnchor // a transcript verdict: "550 <user@example.com>... User unknown"
)

// isAnchor decides whether an address in a line names a failed recipient
// and returns the kind of line and the text that goes with it.
func isAnchor(line string, h addrHit) (int, string) {
	// Only the words just before the address matter; bounding them keeps
	// a line with a million addresses linear.
	before := strings.ToLower(strings.TrimSpace(line[max(0, h.start-maxLeadIn):h.start]))
	after := strings.TrimLeft(line[h.end:], " :,;.>")
	before = strings.TrimRight(before, " \t<\"'")
	if isReplyLine(before) && h.start > 0 && line[h.start] == '<' {
		return replyAnchor, strings.TrimSpace(line)
	}
	// A line holding the address alone (with list marks, a colon, a date).
	if strings.Trim(before, " \t*-•>:.0123456789()") == "" {
		return lineAnchor, after
	}
	for _, l := range leadIns {
		if strings.HasSuffix(before, l) {
			if strings.Contains(before, "rcpt") {
				// Keep the command: it tells which one was refused.
				return lineAnchor, strings.TrimSpace(line)
			}
			return lineAnchor, after
		}
	}
	for _, n := range notLeadIns {
		if strings.HasSuffix(before, n) || before == strings.TrimSpace(n) {
			return noAnchor, ""
		}
	}
	// "User's mailbox is full: <user@example.com>": a reason, a colon,
	// then the address ending the line.
	if strings.HasSuffix(before, ":") && strings.TrimSpace(after) == "" && readText(before).found {
		return lineAnchor, strings.TrimSpace(line)
	}
	return noAnchor, ""
}

// precedingReplies returns the server replies ("<<< 501 ...") a
// Sendmail transcript shows just before its verdict on an address, with
// Sendmail's own summaries between them.
// QUIRK(sendmail): Sendmail V5 transcripts give the verdict alone ("554
// <user@example.com>... Remote protocol error") after what was answered.
func precedingReplies(lines []string, i int) string {
	var got []string
lines:
	for j := i - 1; j >= 0 && j >= i-3; j-- {
		l := strings.TrimSpace(lines[j])
		switch {
		case strings.HasPrefix(l, "<<<"):
			got = append(got, l)
		case isReplyLine(l) && strings.IndexByte(l, '@') < 0:
			// Sendmail's own summary: "421 example.edu (smtp)... Deferred"
		default:
			break lines
		}
	}
	if len(got) == 0 {
		return ""
	}
	for a, b := 0, len(got)-1; a < b; a, b = a+1, b-1 {
		got[a], got[b] = got[b], got[a]
	}
	return strings.Join(got, " ") + " "
}

// isReplyLine reports text that starts with an SMTP reply code.
func isReplyLine(s string) bool {
	return len(s) >= 3 && (s[0] == '4' || s[0] == '5') && isDigit(s[1]) && isDigit(s[2]) &&
		(len(s) == 3 || s[3] == ' ' || s[3] == '-')
}

// boilerplate ends the text read after an address: the report's own
// closing words, or its machine-readable part.
var boilerplate = newPhraseSet([]string{
	"no action is required on your part",
	"please do not reply",
	"for further assistance",
	"if you have any questions",
	"the mail system",
	"--- the header of the original",
	"reporting-mta:",
	"arrival-date:",
	"this is a permanent error",
	"technical report:",
})

func isBoilerplate(line string) bool {
	found := false
	boilerplate.scan(line, func(int) bool { found = true; return false })
	return found
}

// bounceSubjects are subjects of delivery failure reports.
var bounceSubjects = newPhraseSet([]string{
	"undeliverable", "undelivered", "undeliverd", "delivery status notification", "delivery failure",
	"failure notice", "returned mail", "mail delivery failed", "delivery failed", "delivery has failed",
	"non-delivery", "nondeliverable", "non delivery", "could not be delivered", "mail system error",
	"delivery problem", "delivery notification", "returned to sender", "error sending", "failed delivery",
	"failure delivery", "mail failure", "delivery status", "unzustellbar", "non remis", "message not delivered",
	"not delivered", "delivery error", "mail error", "returned message", "rejected:", "warning: message",
	"delayed mail", "delivery delayed", "delivery (delay)", "メールエラー", "エラー通知", "不達", "配信不能",
	"you are not member", "are not member", "loop alert", "there was an error sending your mail",
	"returned email", "bounced mail", "mail returned", "failure notification", "undelivery",
})

// delayWords mark warnings that delivery is still being retried.
var delayWords = []string{
	"has not yet been delivered", "delivery attempts will continue", "will continue trying",
	"still trying", "will retry", "delivery status notification (delay)", "warning: message",
	"delayed mail", "delivery delayed", "not yet been delivered", "this is a warning message only",
	"this is just a warning", "will be retried", "still being retried",
	// Exim's warning of a deferral: "This is a temporary error. The
	// following address(es) deferred:".
	"this is a temporary error", "address(es) deferred",
}

// permanentWords mark reports of a failure that will not be retried.
var permanentWords = []string{
	"this is a permanent error", "permanent failure", "permanent fatal error",
	"i've given up", "giving up", "will not be retried", "failed permanently",
}

// failureWords say delivery failed without saying whether for good: a
// delay warning says them too ("Your message could not be delivered for
// more than 4 hour(s). It will be retried ..."), so they are permanent
// only in a report that says nothing of a retry.
var failureWords = []string{"fatal error", "delivery has failed", "could not be delivered"}

var delayPhrases = newPhraseSet(delayWords)

// reportTone finds the three kinds in one pass over a report: ids below
// len(delayWords) are delay words, then permanent words, then failure
// words.
var reportTone = newPhraseSet(slices.Concat(delayWords, permanentWords, failureWords))

// toneOf reports whether a report's text speaks of a delay and of a
// permanent failure.
func toneOf(text string) (temporary, permanent bool) {
	failed := false
	reportTone.scan(text, func(id int) bool {
		switch {
		case id < len(delayWords):
			temporary = true
		case id < len(delayWords)+len(permanentWords):
			permanent = true
		default:
			failed = true
		}
		return !temporary || !permanent
	})
	return temporary, permanent || failed && !temporary
}

func containsAny(ps *phraseSet, text string) bool {
	found := false
	ps.scan(text, func(int) bool { found = true; return false })
	return found
}

var daemonLocals = []string{"mailer-daemon", "mailer_daemon", "mailerdaemon", "maildaemon", "mail-daemon", "postmaster", "post_master", "mdaemon", "mailadmin", "bounce"}

// looksLikeBounce reports the signs a message without a report part is a
// delivery failure notice: a mailer-daemon sender, a failure subject, or
// Exim's X-Failed-Recipients.
func (m *message) looksLikeBounce() bool {
	if m.bounceLike == 0 {
		m.bounceLike = 2
		if m.bounceSigns() {
			m.bounceLike = 1
		}
	}
	return m.bounceLike == 1
}

func (m *message) bounceSigns() bool {
	if m.top.has("X-Failed-Recipients") {
		return true
	}
	from := strings.ToLower(m.from)
	for _, d := range daemonLocals {
		if strings.Contains(from, d) {
			return true
		}
	}
	if strings.Contains(from, "mail delivery") || strings.Contains(from, "mail administrator") || strings.Contains(from, "system administrator") {
		return true
	}
	if containsAny(bounceSubjects, m.subject) {
		return true
	}
	return containsAny(bounceBodies, clip(m.text, 2048))
}

// bounceBodies are phrases only delivery failure reports open with.
var bounceBodies = newPhraseSet([]string{
	"could not be delivered to", "was not delivered to", "wasn't delivered to", "undeliverable to",
	"delivery has failed", "permanent fatal errors", "wasn't able to deliver", "was unable to deliver",
	"did not reach the following recipient", "could not be delivered to one or more",
	"the following addresses had", "the following address(es) failed", "message could not be delivered",
	"unable to deliver message to", "delivery to the following recipient", "your message could not be delivered",
	"mail delivery failed", "delivery failed", "returned mail", "the following recipients returned",
})

// senderKeys are addresses a report mentions that are not recipients:
// its own From and To (the original sender) and the returned message's
// senders.
func (m *message) senderKeys() map[string]bool {
	if m.senders != nil {
		return m.senders
	}
	keys := map[string]bool{}
	m.senders = keys
	add := func(v string) {
		for _, h := range findAddrs(v) {
			keys[AddressKey(h.addr)] = true
		}
	}
	add(m.top.get("From"))
	add(m.top.get("To"))
	add(m.top.get("Return-Path"))
	add(m.top.get("Reply-To"))
	if m.hasOrig {
		add(m.original.get("From"))
		add(m.original.get("Return-Path"))
		add(m.original.get("Sender"))
		add(m.original.get("Reply-To"))
	}
	return keys
}

// readTextBounce reads a report without an RFC 3464 part.
func readTextBounce(rep *Report, m *message) bool {
	if !m.looksLikeBounce() {
		return false
	}
	report, returned := splitReturned(m.text)
	if !m.hasOrig && returned != "" {
		if h, b := readHeader([]byte(firstHeaderBlock(returned))); len(h) > 0 {
			m.original, m.origBody, m.hasOrig = h, b, true
			m.senders = nil // the returned message's senders count too
			rep.Original = originalFrom(h)
			rep.OriginalMessageID = rep.Original.MessageID
		}
	}
	t := newTextReport(report, m.senderKeys())
	t.temporary, t.permanent = toneOf(report)
	t.temporary = t.temporary || containsAny(delayPhrases, m.subject)
	if t.permanent {
		t.temporary = false
	}
	var drafts []draft
	for _, b := range t.blocks {
		drafts = append(drafts, t.draftFor(b, len(t.blocks) == 1))
	}
	if m.top.has("X-Failed-Recipients") {
		// QUIRK(exim): Exim gives up on an address whose deliveries kept
		// failing temporarily with "retry timeout exceeded" or "all hosts
		// have been failing for a long time": the failure was transient.
		for i := range drafts {
			drafts[i].transientCause = containsAny(eximExpiry, drafts[i].Diagnostic)
		}
	}
	if len(drafts) == 0 {
		if addr := m.fallbackRecipient(report); addr != "" {
			d := t.draftFor(block{addr: addr}, true)
			drafts = append(drafts, d)
		}
	}
	if len(drafts) == 0 {
		return false
	}
	rep.Engine = "text"
	for i := range drafts {
		rep.Recipients = append(rep.Recipients, drafts[i].finish())
	}
	return true
}

// draftFor turns a block into a recipient. With one recipient, the whole
// report's failure lines stand in for a block that quotes no server.
func (t *textReport) draftFor(b block, only bool) draft {
	var d draft
	d.Address = b.addr
	d.Diagnostic = b.text
	if orig := expandedFrom(b.text); orig != "" && internalAddress(d.Address) {
		// Postfix names the alias target and what it was expanded from:
		// "<jdoe@store.internal> (expanded from <john@example.com>): ...".
		// An internal target is not an address the sender mailed (as
		// with a DSN's Original-Recipient, dsnRecipient).
		d.Address, d.OriginalRecipient = orig, orig
	}
	if only && !saysWhy(b.text) {
		if lines := t.failureLines(); lines != "" {
			d.Diagnostic = strings.TrimSpace(b.text + " " + lines)
		}
	}
	d.Diagnostic = clip(d.Diagnostic, 1000)
	d.temporary, d.permanent = t.temporary, t.permanent
	if t.temporary {
		d.Action = ActionDelayed
	} else {
		d.Action = ActionFailed
	}
	return d
}

// expandedFrom returns the address of a block that starts "(expanded
// from <a@b>)", normalised, or "".
func expandedFrom(text string) string {
	const prefix = "(expanded from "
	if len(text) < len(prefix) || !strings.EqualFold(text[:len(prefix)], prefix) {
		return ""
	}
	rest, _, ok := strings.Cut(text[len(prefix):], ")")
	if !ok {
		return ""
	}
	a, err := NormalizeAddress(rest)
	if err != nil {
		return ""
	}
	return a
}

var eximExpiry = newPhraseSet([]string{"retry timeout exceeded", "have been failing for a long time"})

// saysWhy reports text with a failure code or a known phrase.
func saysWhy(text string) bool {
	if hasFailureCode(text) {
		return true
	}
	_, ok := textReason(text)
	return ok
}

// failureLines returns the report lines that carry a code or a known
// failure phrase, joined.
func (t *textReport) failureLines() string {
	if t.failures != nil {
		return *t.failures
	}
	// One pass finds the phrases; lines with one, or with a failure code,
	// are kept.
	marked := make(map[int]bool)
	lineOf := 0
	pos := 0
	textPhrases.scanAt(t.text, func(id, end int) bool {
		if allRules[id].role != 0 {
			return true // a word of the dead-mailbox model, not a phrase
		}
		for lineOf < len(t.lines) && pos+len(t.lines[lineOf]) < end {
			pos += len(t.lines[lineOf]) + 1
			lineOf++
		}
		marked[lineOf] = true
		return true
	})
	var b strings.Builder
	for i, l := range t.lines {
		l = strings.TrimSpace(l)
		if l == "" || len(l) > 400 {
			continue
		}
		if marked[i] || hasFailureCode(l) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(l)
			if b.Len() > 1000 {
				break
			}
		}
	}
	out := b.String()
	t.failures = &out
	return out
}

// hasFailureCode reports text with a 4.x.x/5.x.x or 4xx/5xx code.
func hasFailureCode(text string) bool {
	if st := FindStatus(text); st != "" && st.Class() != 2 {
		return true
	}
	return findFailureReply(text) != ""
}

// fallbackRecipient names the recipient of a bounce whose text lists
// none in the usual shapes: Exim's X-Failed-Recipients, else the one
// address the report names anywhere (not its own or the sender's), and
// only when it names none, the returned message's single To. The To of
// the returned message is a last resort: it may be a list's own address
// while the report (an Exchange NDR) names the member that failed.
func (m *message) fallbackRecipient(report string) string {
	if v := m.top.get("X-Failed-Recipients"); v != "" {
		if hits := findAddrs(v); len(hits) > 0 {
			return hits[0].addr
		}
	}
	senders := m.senderKeys()
	named := ""
	for _, line := range strings.Split(report, "\n") {
		if strings.IndexByte(line, '@') < 0 {
			continue
		}
		for _, h := range findAddrs(line) {
			key := AddressKey(h.addr)
			switch {
			case senders[key] || isDaemonAddress(h.addr):
			case named == "":
				named = h.addr
			case AddressKey(named) != key:
				return "" // several: which one failed is not said
			}
		}
	}
	if named != "" {
		return named
	}
	if m.hasOrig {
		if hits := findAddrs(m.original.get("To")); len(hits) == 1 {
			return hits[0].addr
		}
	}
	return ""
}

// isDaemonAddress reports a mail system's own address (mailer-daemon,
// postmaster), named in reports as whom to write to.
func isDaemonAddress(addr string) bool {
	local, _, _ := strings.Cut(strings.ToLower(addr), "@")
	for _, d := range daemonLocals {
		if strings.Contains(local, d) {
			return true
		}
	}
	return false
}

// firstHeaderBlock skips to the first line that looks like a header field.
func firstHeaderBlock(s string) string {
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line = s[:i]
		}
		if name, _, ok := strings.Cut(line, ":"); ok && name != "" && !strings.ContainsAny(name, " \t") {
			return s
		}
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		} else {
			return ""
		}
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xc0 == 0x80 {
		n-- // keep UTF-8 whole
	}
	return s[:n]
}

// textContext finds what a DSN's human-readable part says about each
// recipient, for DSNs whose Diagnostic-Code is empty or vague. The whole
// report's failure lines and stage are read only when a recipient needs
// them.
type textContext struct {
	t      *textReport
	report string
	blocks map[string]string
	stage  *string // the SMTP command the report as a whole names, once read
}

func newTextContext(m *message) *textContext {
	c := &textContext{}
	if m.text == "" {
		return c
	}
	report, _ := splitReturned(m.text)
	c.report = report
	c.t = newTextReport(report, m.senderKeys())
	c.blocks = make(map[string]string, len(c.t.blocks))
	for _, b := range c.t.blocks {
		c.blocks[AddressKey(b.addr)] = b.text
	}
	return c
}

// wholeStage returns the SMTP command the report as a whole names.
func (c *textContext) wholeStage() string {
	if c.stage == nil {
		st := smtpStage(c.report)
		c.stage = &st
	}
	return *c.stage
}

// enrich adds the human-readable part's words to a DSN recipient.
func (c *textContext) enrich(d *draft) {
	text, ok := c.blocks[AddressKey(d.Address)]
	if !ok && len(c.blocks) == 1 {
		for _, t := range c.blocks {
			text = t
		}
	}
	if d.stage == "" {
		d.stage = smtpStage(text)
	}
	if d.stage == "" && len(c.blocks) <= 1 && c.t != nil {
		d.stage = c.wholeStage()
	}
	if d.Diagnostic == "" {
		d.Diagnostic = clip(text, 1000)
	}
	if d.context == "" && d.contextOf == nil && c.t != nil {
		d.contextOf, d.contextBlock = c, text
	}
}

// contextText is the report's words about d: its block, then the
// report's failure lines.
func (d *draft) contextText() string {
	if d.contextOf != nil {
		d.context = strings.TrimSpace(d.contextBlock + " " + d.contextOf.t.failureLines())
		d.contextOf = nil
	}
	return d.context
}

var htmlEntities = strings.NewReplacer("&nbsp;", " ", "&lt;", "<", "&gt;", ">", "&amp;", "&", "&quot;", `"`, "&#39;", "'")

// htmlToText strips tags from an HTML part, keeping line structure.
func htmlToText(s string) string {
	var b strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '<':
			in = true
			rest := s[i+1:]
			if hasPrefixFold(rest, "br") || hasPrefixFold(rest, "p") || hasPrefixFold(rest, "/p") ||
				hasPrefixFold(rest, "div") || hasPrefixFold(rest, "/div") || hasPrefixFold(rest, "tr") || hasPrefixFold(rest, "li") {
				b.WriteByte('\n')
			}
		case c == '>' && in:
			in = false
		case !in:
			b.WriteByte(c)
		}
	}
	return htmlEntities.Replace(b.String())
}
