package parse

import (
	"strings"
)

// field is one "Name: value" line of a delivery-status or feedback-report
// body, with the name lower-cased and continuation lines joined.
type field struct{ name, value string }

// fieldGroups splits an RFC 3464 delivery-status body into its blocks:
// the per-message fields, then one block per recipient. Empty lines
// separate blocks; a Final-Recipient after one already read starts a new
// block too, for reports that leave the empty lines out.
func fieldGroups(body string) [][]field {
	var groups [][]field
	var cur []field
	var cont strings.Builder // continuation of cur's last field
	flushCont := func() {
		if cont.Len() > 0 {
			cur[len(cur)-1].value += cont.String()
			cont.Reset()
		}
	}
	endGroup := func() {
		flushCont()
		if len(cur) > 0 {
			groups = append(groups, cur)
			cur = nil
		}
	}
	for len(body) > 0 {
		line := body
		if i := strings.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			body = ""
		}
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			endGroup()
			continue
		}
		if (line[0] == ' ' || line[0] == '\t') && len(cur) > 0 {
			if cont.Len() < 4096 {
				cont.WriteByte(' ')
				cont.WriteString(trimmed)
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(strings.TrimSpace(name), " \t") {
			continue
		}
		name = strings.ToLower(strings.TrimSpace(name))
		flushCont()
		cur = append(cur, field{name: name, value: strings.TrimSpace(value)})
	}
	endGroup()
	// Reports that leave out the empty lines: split a block before each
	// Final-Recipient after the first (with an Original-Recipient just
	// before it), and the per-message fields from the first recipient.
	var out [][]field
	for _, g := range groups {
		start := 0
		seenFinal := false
		perMessage := len(g) > 0 && (g[0].name == "reporting-mta" || g[0].name == "received-from-mta" || g[0].name == "arrival-date")
		for i, f := range g {
			if f.name != "final-recipient" && f.name != "original-recipient" {
				continue
			}
			cut := i
			if f.name == "final-recipient" && i > start && g[i-1].name == "original-recipient" {
				cut = i - 1
			}
			if perMessage && cut > start || f.name == "final-recipient" && seenFinal && cut > start {
				out = append(out, g[start:cut])
				start = cut
			}
			perMessage = false
			if f.name == "final-recipient" {
				seenFinal = true
			}
		}
		out = append(out, g[start:])
	}
	return out
}

func has(fs []field, name string) bool {
	for _, f := range fs {
		if f.name == name {
			return true
		}
	}
	return false
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

// readDSN reads delivery-status fields: the message/delivery-status
// parts, or fields written into the text of a report that lost its MIME
// structure (forwarded, or flattened by a relay). It reports false when
// they name no recipient, so other readers may try.
func readDSN(rep *Report, m *message, bodies []string) bool {
	var drafts []draft
	for _, body := range bodies {
		for i, g := range fieldGroups(body) {
			if !has(g, "final-recipient") && !has(g, "original-recipient") {
				if i == 0 && rep.ReportingMTA == "" {
					rep.ReportingMTA = stripType(get(g, "reporting-mta"))
					rep.ArrivalDate = get(g, "arrival-date")
					rep.OriginalEnvelopeID = get(g, "original-envelope-id")
				}
				continue
			}
			drafts = append(drafts, dsnRecipient(g))
		}
	}
	if len(drafts) == 0 {
		return false
	}
	ctx := newTextContext(m)
	// QUIRK(opensmtpd): OpenSMTPD's reports never name the SMTP command a
	// reply answered ("addr: 550 No such user!"), and its DSN carries a
	// bare "Status: 5.0.0": unknown-user words there are the remote
	// server's verdict as much as anywhere, not a content filter's
	// refusal after DATA (quirks/opensmtpd-no-stage.eml).
	unsaid := containsAny(openSMTPDTemplate, clip(m.text, 512))
	// QUIRK(nullmailer): nullmailer never names the command either, and
	// it writes a report only when it gives a message up: on a permanent
	// reply, or once the message outlived queuelifetime
	// (nullmailer-send(8)). For the latter nullmailer-dsn still fills in
	// its delay template ("Action: delayed", the last reply's 4.x.x, "A
	// final delivery status notification will be generated ..."), but no
	// other report follows: it is the final one
	// (quirks/nullmailer-gave-up.eml, quirks/nullmailer-no-stage.eml).
	nullmailer := containsAny(nullmailerTemplate, clip(m.text, 512))
	unsaid = unsaid || nullmailer
	for i := range drafts {
		d := &drafts[i]
		ctx.enrich(d)
		if unsaid && d.stage == "" {
			d.stage = stageUnsaid
		}
		if d.Action == ActionDelayed && (nullmailer || containsAny(envelopeExpired, d.Diagnostic)) {
			// QUIRK(opensmtpd): OpenSMTPD reports an envelope it gave up on
			// with its delay template ("Action: delayed", "Status: 4.4.7",
			// "... is only a temporary failure report") and the words
			// "Envelope expired": the failure is final
			// (quirks/opensmtpd-envelope-expired.eml).
			d.Action, d.transientCause = ActionFailed, true
		}
		rep.Recipients = append(rep.Recipients, d.finish())
	}
	return true
}

var openSMTPDTemplate = newPhraseSet([]string{"this is the mailer-daemon, please do not reply to this email"})

var nullmailerTemplate = newPhraseSet([]string{"this is the nullmailer delivery system"})

var envelopeExpired = newPhraseSet([]string{"envelope expired"})

var inlineDSNFields = newPhraseSet([]string{"\nreporting-mta:", "\nfinal-recipient:", "\noriginal-recipient:"})

// inlineDSN returns the delivery-status fields written in a text, from
// the first of them on, or "" when the text has no Final-Recipient.
func inlineDSN(text string) string {
	start, recipient := -1, false
	pos := 0
	inlineDSNFields.scan(text, func(id int) bool {
		if id > 0 {
			recipient = true
		}
		return !recipient
	})
	if !recipient {
		return ""
	}
	// The scan cannot report offsets; find the first field line again.
	for pos < len(text) {
		end := strings.IndexByte(text[pos:], '\n')
		line := text[pos:]
		if end >= 0 {
			line = text[pos : pos+end]
		}
		if hasPrefixFold(line, "reporting-mta:") || hasPrefixFold(line, "final-recipient:") || hasPrefixFold(line, "original-recipient:") {
			start = pos
			break
		}
		if end < 0 {
			break
		}
		pos += end + 1
	}
	if start < 0 {
		return ""
	}
	return text[start:]
}

func dsnRecipient(g []field) draft {
	var d draft
	d.Action = Action(strings.ToLower(strings.Fields(get(g, "action") + " x")[0]))
	d.RemoteMTA = stripType(get(g, "remote-mta"))
	d.Diagnostic = stripType(get(g, "diagnostic-code"))
	d.LastAttemptDate = get(g, "last-attempt-date")
	d.WillRetryUntil = get(g, "will-retry-until")
	// The address type is "rfc822" by RFC 3464; some write "rfc/822".
	final := stripType(get(g, "final-recipient"))
	orig := stripType(get(g, "original-recipient"))
	if a, err := NormalizeAddress(final); err == nil {
		d.Address = a
	}
	if a, err := NormalizeAddress(orig); err == nil {
		d.OriginalRecipient = a
		if d.Address == "" || internalAddress(d.Address) {
			// The final recipient is a rewritten internal address (Sun
			// Messaging Server's "...@sims-ms-daemon", a local alias
			// target): the original one is the address that was mailed.
			d.Address = a
		}
	}
	if d.Address == "" {
		d.Address = stripType(final)
	}
	status, _ := ParseStatus(firstWord(get(g, "status")))
	d.Status = status
	return d
}

// internalAddress reports an address no sender mails: a host-local
// domain without a dot, a delivery daemon's own name, or a name under a
// top-level label that is private by convention or by RFC 6761/6762 and
// ICANN's reservation of .internal (a mail store behind the MX that an
// alias was rewritten to).
func internalAddress(addr string) bool {
	_, domain, _ := strings.Cut(addr, "@")
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if !strings.Contains(domain, ".") || strings.HasSuffix(domain, "sims-ms-daemon") {
		return true
	}
	switch domain[strings.LastIndexByte(domain, '.')+1:] {
	case "localdomain", "local", "localhost", "internal", "lan", "intranet", "corp", "home", "invalid":
		return true
	}
	return strings.HasSuffix(domain, ".home.arpa")
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t("); i >= 0 {
		return s[:i]
	}
	return s
}
