package parse

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// MaxInputSize is the default cap on one message; Parse refuses larger input.
const MaxInputSize = 10 << 20

// maxTextLen caps how much human-readable text one report is searched in.
// Reports put what matters first; the rest is usually the returned message.
const maxTextLen = 256 << 10

var (
	// ErrTooLarge is returned for input over the size cap.
	ErrTooLarge = errors.New("parse: message too large")
	// ErrEmpty is returned for empty input.
	ErrEmpty = errors.New("parse: empty message")
	// ErrMalformed is wrapped by errors about input that is not a readable
	// mail message at all.
	ErrMalformed = errors.New("parse: malformed message")
)

// Options tune ParseWithOptions. The zero value is what Parse uses.
type Options struct {
	// MaxSize caps the input; 0 means MaxInputSize.
	MaxSize int
	// VERP, when its Prefix is set, names the recipient of a bounce that
	// does not say it itself, from the VERP address the bounce was sent to:
	// an envelope recipient (EnvelopeTo), else its X-Original-To,
	// Delivered-To, Envelope-To or To header, else the returned message's
	// Return-Path. The report's VERP field says what was found.
	VERP VERP
	// EnvelopeTo are the SMTP envelope recipients (RCPT TO) of a message
	// received over SMTP or LMTP, when the caller knows them.
	EnvelopeTo []string
	// RecipientHeaders are header fields the sender puts in its messages
	// to name the recipient ("X-Rcpt-To"); when a report names none, they
	// are looked up in the returned message.
	RecipientHeaders []string
}

// Parse reads one message and reports what it says about delivery. The
// returned report is never nil; when err is non-nil it holds what could be
// read (Kind is a best effort). Parse is safe for concurrent use and runs
// in time linear in the size of its input.
func Parse(raw []byte) (*Report, error) { return ParseWithOptions(raw, Options{}) }

// ParseWithOptions is Parse with VERP and recipient-header recovery and a
// size cap of the caller's choosing.
func ParseWithOptions(raw []byte, opt Options) (*Report, error) {
	rep := &Report{Kind: KindNotBounce, Recipients: []Recipient{}}
	limit := opt.MaxSize
	if limit <= 0 {
		limit = MaxInputSize
	}
	if len(raw) == 0 {
		return rep, ErrEmpty
	}
	if len(raw) > limit {
		return rep, ErrTooLarge
	}
	raw = normalizeLineEndings(raw)
	if msgs := splitMbox(raw); len(msgs) > 1 {
		return parseMbox(msgs, opt)
	}
	return parseOne(raw, opt)
}

// maxMboxMessages caps the messages read from one mbox input.
const maxMboxMessages = 64

// splitMbox splits input in mbox format (messages each opened by a
// "From sender Mon Jan  2 ..." line) into its messages.
func splitMbox(raw []byte) [][]byte {
	if !bytes.HasPrefix(raw, []byte("From ")) {
		return nil
	}
	var msgs [][]byte
	start := 0
	pos := 0
	for len(msgs) < maxMboxMessages-1 {
		i := bytes.Index(raw[pos:], []byte("\nFrom "))
		if i < 0 {
			break
		}
		cut := pos + i + 1
		pos = cut + 5
		if !isFromLine(raw[cut:]) {
			continue
		}
		msgs = append(msgs, raw[start:cut])
		start = cut
	}
	return append(msgs, raw[start:])
}

// isFromLine reports an mbox separator: "From sender Mon Jan  2 ...".
func isFromLine(b []byte) bool {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	f := strings.Fields(string(b[min(len(b), 5):min(len(b), 200)]))
	if len(f) < 3 {
		return false
	}
	switch f[1] {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}

// parseMbox reads each message of an mbox and reports their recipients
// together, in order; the report's other fields come from the first
// message that has recipients.
func parseMbox(msgs [][]byte, opt Options) (*Report, error) {
	var out *Report
	var firstErr error
	for _, msg := range msgs {
		rep, err := parseOne(msg, opt)
		if err != nil && firstErr == nil {
			firstErr = err
		}
		switch {
		case out == nil:
			out = rep
		case len(out.Recipients) == 0:
			rep.Recipients = append(out.Recipients, rep.Recipients...)
			out = rep
		default:
			out.Recipients = append(out.Recipients, rep.Recipients...)
		}
	}
	if len(out.Recipients) > 0 {
		firstErr = nil
	}
	if out.Kind != KindComplaint && out.Kind != KindAutoReply {
		out.Kind = kindOf(out)
	}
	return out, firstErr
}

func parseOne(raw []byte, opt Options) (*Report, error) {
	rep := &Report{Kind: KindNotBounce, Recipients: []Recipient{}}
	top, body := readHeader(raw)
	if len(top) == 0 {
		// Without a header only the envelope can name a VERP recipient.
		m := newMessage(nil, raw)
		m.recoverRecipient(rep, opt)
		settle(rep)
		return rep, fmt.Errorf("%w: no header fields", ErrMalformed)
	}
	m := newMessage(top, body)
	m.read(rep)
	m.recoverRecipient(rep, opt)
	settle(rep)
	if m.broken && len(rep.Recipients) == 0 {
		return rep, fmt.Errorf("%w: unreadable MIME structure", ErrMalformed)
	}
	return rep, nil
}

// normalizeLineEndings turns CRLF and bare CR line breaks into LF, so the
// rest of the parser deals with one kind. A run of CRs before an LF
// ("\r\r\n", CRLF that went through a text-mode copy) is one break.
// Input without CR is not copied.
func normalizeLineEndings(raw []byte) []byte {
	if bytes.IndexByte(raw, '\r') < 0 {
		return raw
	}
	out := make([]byte, 0, len(raw))
	for k := 0; k < len(raw); k++ {
		c := raw[k]
		if c == '\r' {
			j := k
			for j < len(raw) && raw[j] == '\r' {
				j++
			}
			if j < len(raw) && raw[j] == '\n' {
				k = j // CR...CRLF: one break, written by the LF
				c = '\n'
			} else {
				c = '\n' // a bare CR (old Mac OS)
			}
		}
		out = append(out, c)
	}
	return out
}

// message is one input, split into the parts a bounce parser reads.
type message struct {
	top      header
	body     []byte
	parts    []part
	from     string // top From, decoded
	subject  string // top Subject, decoded
	dsn      []*part
	feedback *part
	original header // the returned message's header, if any
	origBody []byte // and its body
	hasOrig  bool
	text     string // the human-readable report, before any returned message
	broken   bool
	nesting  int // how many reports enclose this one
	// bounceLike caches looksLikeBounce: 0 unknown, 1 yes, 2 no.
	bounceLike int8
	// senders caches senderKeys.
	senders map[string]bool
}

func newMessage(top header, body []byte) *message {
	m := &message{top: top, body: body}
	m.parts = walkParts(top, body, 0, nil)
	m.from = top.text("From")
	m.subject = top.text("Subject")
	var texts []string
	size := 0
	for i := range m.parts {
		p := &m.parts[i]
		m.broken = m.broken || p.broken
		switch p.mediaType {
		case "message/delivery-status", "message/global-delivery-status", "text/delivery-status":
			m.dsn = append(m.dsn, p)
		case "message/feedback-report":
			if m.feedback == nil {
				m.feedback = p
			}
		case "message/rfc822", "message/global", "message/partial",
			"text/rfc822-headers", "message/rfc822-headers", "message/global-headers", "text/rfc822-header":
			if !m.hasOrig {
				m.original, m.origBody = readHeader(p.decoded())
				m.hasOrig = len(m.original) > 0
			}
		case "text/plain", "text/html", "text/enriched", "text/x-aol":
			if m.hasOrig || size > maxTextLen || isAttachment(p) && len(texts) > 0 {
				continue
			}
			t := p.text()
			if p.mediaType == "text/html" {
				if len(texts) > 0 {
					continue // an alternative to text already read
				}
				t = htmlToText(t)
			}
			size += len(t)
			texts = append(texts, t)
		}
	}
	m.text = strings.Join(texts, "\n")
	if len(m.text) > maxTextLen {
		m.text = m.text[:maxTextLen]
	}
	return m
}

func isAttachment(p *part) bool {
	return strings.HasPrefix(strings.ToLower(p.h.get("Content-Disposition")), "attachment")
}

// read fills rep from the message: a feedback report, a delivery status
// notification, a provider's notification, a plain-text bounce, or an
// automatic reply, tried in that order.
func (m *message) read(rep *Report) {
	if m.hasOrig {
		rep.Original = originalFrom(m.original)
		rep.OriginalMessageID = rep.Original.MessageID
	}
	switch {
	case m.feedback != nil:
		rep.Engine = "ARF"
		readFeedback(rep, m)
		return
	case len(m.dsn) > 0:
		bodies := make([]string, len(m.dsn))
		for i, p := range m.dsn {
			bodies[i] = p.text()
		}
		if readDSN(rep, m, bodies) {
			rep.Engine = "RFC3464"
			return
		}
	}
	if inline := inlineDSN(m.text); inline != "" && readDSN(rep, m, []string{inline}) {
		rep.Engine = "RFC3464"
		return
	}
	if readVendorJSON(rep, m) {
		return
	}
	if readUnsubscribe(rep, m) {
		return
	}
	if m.readEnclosedReport(rep) {
		return
	}
	if readTextBounce(rep, m) {
		return
	}
	readAutoReply(rep, m)
}

// maxNesting caps how deep reports enclosed in reports are read.
const maxNesting = 2

// readEnclosedReport reads a report that came back inside another one: a
// gateway that wraps the DSN it received in a notice of its own.
func (m *message) readEnclosedReport(rep *Report) bool {
	if !m.hasOrig || m.nesting >= maxNesting || !m.looksLikeBounce() {
		return false
	}
	ct := m.original.get("Content-Type")
	if !strings.EqualFold(mediaTypeOf(ct), "multipart/report") && !strings.Contains(strings.ToLower(m.original.get("From")), "mailer-daemon") {
		return false
	}
	inner := newMessage(m.original, m.origBody)
	inner.nesting = m.nesting + 1
	var r Report
	r.Recipients = []Recipient{}
	inner.read(&r)
	if len(r.Recipients) == 0 {
		return false
	}
	orig := rep.Original
	*rep = r
	if rep.Original == nil {
		rep.Original = orig
	}
	return true
}

// originalFrom reads what matters of the returned message's header.
func originalFrom(h header) *Original {
	o := &Original{
		MessageID:       h.get("Message-Id"),
		Subject:         h.text("Subject"),
		From:            h.text("From"),
		To:              h.text("To"),
		ListUnsubscribe: h.get("List-Unsubscribe"),
	}
	for _, f := range h {
		if len(f.name) > 2 && (f.name[0] == 'X' || f.name[0] == 'x') && f.name[1] == '-' {
			if o.XHeaders == nil {
				o.XHeaders = make(map[string]string)
			}
			k := string(f.name)
			if _, dup := o.XHeaders[k]; !dup {
				o.XHeaders[k] = unfold(f.value)
			}
		}
	}
	return o
}

// recoverRecipient notes the VERP address the message was sent to and,
// when the report names no recipient of its own, makes it the recipient;
// failing a VERP address, a header of the returned message that names
// the recipient (Options.RecipientHeaders) does, when the message looks
// like a bounce. Mail sent back to a VERP address is about its recipient
// whatever it looks like: that is what the address is for.
func (m *message) recoverRecipient(rep *Report, opt Options) {
	matches := opt.VERP.find(opt.EnvelopeTo, m.top, m.original)
	named := namesRecipient(rep)
	if len(matches) > 0 {
		addrs := make([]string, len(matches))
		for i := range matches {
			matches[i].Used = !named
			addrs[i] = matches[i].Recipient
		}
		rep.VERP = &matches[0]
		if len(matches) > 1 {
			rep.VERPs = matches
		}
		if !named {
			m.standIn(rep, addrs...)
		}
		return
	}
	if named {
		return
	}
	if !m.hasOrig || len(opt.RecipientHeaders) == 0 ||
		rep.Kind == KindNotBounce && len(rep.Recipients) == 0 && !m.looksLikeBounce() {
		return
	}
	for _, name := range opt.RecipientHeaders {
		if a, err := NormalizeAddress(m.original.get(name)); err == nil {
			m.standIn(rep, a)
			return
		}
	}
}

// settle finishes every recipient and derives the message kind.
func settle(rep *Report) {
	for i := range rep.Recipients {
		r := &rep.Recipients[i]
		r.Suppress = r.Class.Suppresses()
	}
	if rep.Kind == KindComplaint || rep.Kind == KindAutoReply {
		return
	}
	rep.Kind = kindOf(rep)
}

// kindOf derives the message kind from its recipients.
func kindOf(rep *Report) Kind {
	if len(rep.Recipients) == 0 {
		return KindNotBounce
	}
	kind := KindDelivery
	for _, r := range rep.Recipients {
		switch r.Action {
		case ActionFailed:
			return KindBounce
		case ActionDelayed:
			kind = KindDelay
		}
	}
	return kind
}

// firstLines returns up to n non-empty lines of text, joined by spaces.
func firstLines(text string, n int) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
			if len(out) == n {
				break
			}
		}
	}
	return strings.Join(out, " ")
}
