package parse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset" // decode legacy charsets in text parts
)

// MaxInputSize is the default cap on one message; Parse refuses larger input.
const MaxInputSize = 10 << 20

// maxPartSize caps how much of one MIME part is read.
const maxPartSize = 4 << 20

var (
	// ErrTooLarge is returned for input over MaxInputSize.
	ErrTooLarge = errors.New("parse: message too large")
	// ErrEmpty is returned for empty input.
	ErrEmpty = errors.New("parse: empty message")
	// ErrMalformed is wrapped by errors about input that is not a readable
	// mail message at all.
	ErrMalformed = errors.New("parse: malformed message")
)

// Parse reads one message and reports what it says about delivery. The
// returned report is never nil; when err is non-nil it holds what could be
// read (Kind is a best effort).
func Parse(raw []byte) (*Report, error) {
	rep := &Report{Kind: KindNotBounce, Recipients: []Recipient{}}
	if len(raw) == 0 {
		return rep, ErrEmpty
	}
	if len(raw) > MaxInputSize {
		return rep, ErrTooLarge
	}
	raw = normalizeLineEndings(raw)
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		return rep, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if ent.Header.Fields().Len() == 0 {
		return rep, fmt.Errorf("%w: no header fields", ErrMalformed)
	}
	var p parser
	walkErr := ent.Walk(p.visit)
	p.finish(rep, ent.Header)
	if walkErr != nil && len(rep.Recipients) == 0 {
		return rep, fmt.Errorf("%w: %w", ErrMalformed, walkErr)
	}
	return rep, nil
}

// normalizeLineEndings turns bare CR line breaks (old Mac mailers) into LF;
// go-message handles LF and CRLF itself.
func normalizeLineEndings(raw []byte) []byte {
	i := bytes.IndexByte(raw, '\r')
	for i >= 0 && i+1 < len(raw) && raw[i+1] == '\n' {
		j := bytes.IndexByte(raw[i+1:], '\r')
		if j < 0 {
			return raw
		}
		i += 1 + j
	}
	if i < 0 {
		return raw
	}
	out := make([]byte, 0, len(raw))
	for k := 0; k < len(raw); k++ {
		if raw[k] == '\r' {
			if k+1 < len(raw) && raw[k+1] == '\n' {
				continue
			}
			out = append(out, '\n')
			continue
		}
		out = append(out, raw[k])
	}
	return out
}

// parser collects the parts of one message as Walk visits them.
type parser struct {
	reportType     string
	deliveryStatus []byte
	feedback       []byte
	original       *message.Header
	firstText      []byte
}

func (p *parser) visit(path []int, e *message.Entity, _ error) error {
	mt, params, _ := e.Header.ContentType()
	switch {
	case mt == "multipart/report" && p.reportType == "":
		p.reportType = strings.ToLower(params["report-type"])
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		if p.deliveryStatus == nil {
			p.deliveryStatus = readPart(e.Body)
		}
	case mt == "message/feedback-report":
		if p.feedback == nil {
			p.feedback = readPart(e.Body)
		}
	case mt == "message/rfc822" || mt == "message/global" ||
		mt == "text/rfc822-headers" || mt == "message/global-headers" || mt == "message/rfc822-headers":
		if p.original == nil {
			if inner, err := message.Read(io.LimitReader(e.Body, maxPartSize)); inner != nil && (err == nil || message.IsUnknownCharset(err)) {
				h := inner.Header
				p.original = &h
			}
		}
	case strings.HasPrefix(mt, "text/") && p.firstText == nil && len(path) <= 1:
		p.firstText = readPart(e.Body)
	}
	return nil
}

func readPart(r io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, maxPartSize))
	return b
}

func (p *parser) finish(rep *Report, top message.Header) {
	if p.original != nil {
		rep.Original = originalFrom(*p.original)
		rep.OriginalMessageID = rep.Original.MessageID
	}
	switch {
	case p.deliveryStatus != nil:
		rep.Engine = "RFC3464"
		readDeliveryStatus(rep, p.deliveryStatus)
	case p.feedback != nil:
		rep.Engine = "ARF"
		readFeedback(rep, p.feedback)
	case isAutoReply(top):
		rep.Engine = "RFC3834"
		rep.Kind = KindAutoReply
		return
	}
	rep.Kind = kindOf(rep)
}

// kindOf derives the message kind from its recipients.
func kindOf(rep *Report) Kind {
	if rep.Kind == KindComplaint || rep.Kind == KindAutoReply {
		return rep.Kind
	}
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

func originalFrom(h message.Header) *Original {
	o := &Original{
		MessageID:       strings.TrimSpace(h.Get("Message-Id")),
		Subject:         decodeHeader(h, "Subject"),
		From:            decodeHeader(h, "From"),
		To:              decodeHeader(h, "To"),
		ListUnsubscribe: strings.TrimSpace(h.Get("List-Unsubscribe")),
	}
	fields := h.Fields()
	for fields.Next() {
		k := fields.Key()
		if len(k) > 2 && (k[0] == 'X' || k[0] == 'x') && k[1] == '-' {
			if o.XHeaders == nil {
				o.XHeaders = make(map[string]string)
			}
			if _, dup := o.XHeaders[k]; !dup {
				o.XHeaders[k] = strings.TrimSpace(fields.Value())
			}
		}
	}
	return o
}

func decodeHeader(h message.Header, key string) string {
	if v, err := h.Text(key); err == nil {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(h.Get(key))
}

// isAutoReply reports RFC 3834 and common vacation markers. Bounces carry
// "Auto-Submitted: auto-replied" too, so mail from a mailer daemon or with
// a failure subject is never taken for a vacation reply.
func isAutoReply(h message.Header) bool {
	from := strings.ToLower(h.Get("From"))
	subject := strings.ToLower(decodeHeader(h, "Subject"))
	for _, w := range []string{"mailer-daemon", "postmaster", "mail delivery"} {
		if strings.Contains(from, w) {
			return false
		}
	}
	for _, w := range []string{"deliver", "failure", "failed", "returned", "undeliverable", "returning"} {
		if strings.Contains(subject, w) {
			return false
		}
	}
	as := strings.ToLower(h.Get("Auto-Submitted"))
	if strings.HasPrefix(as, "auto-replied") {
		return true
	}
	if h.Has("X-Autoreply") || h.Has("X-Autorespond") {
		return true
	}
	prec := strings.ToLower(h.Get("Precedence"))
	return prec == "auto_reply"
}
