package ingest

import (
	"bufio"
	"bytes"
	"net/mail"
	"net/textproto"
	"strings"

	"github.com/bounced/bounced/internal/parse"
)

// verpHeaders are where a delivered bounce keeps the address it was sent
// to: MTAs add the first three at final delivery, and a DSN's To is the
// envelope sender of the message that bounced, the VERP address itself.
var verpHeaders = []string{"Delivered-To", "X-Original-To", "Envelope-To", "To"}

// maxHeaderScan caps how much of a message is read looking for headers.
const maxHeaderScan = 64 << 10

// verpFromHeaders finds a VERP bounce address in raw's header and returns
// the recipient and token it encodes. A zero Prefix disables VERP.
func verpFromHeaders(v parse.VERP, raw []byte) (recipient, token string, ok bool) {
	if v.Prefix == "" {
		return "", "", false
	}
	if len(raw) > maxHeaderScan {
		raw = raw[:maxHeaderScan]
	}
	// A header cut short still yields the fields read before the cut.
	h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(raw))).ReadMIMEHeader()
	for _, name := range verpHeaders {
		for _, value := range h.Values(name) {
			addrs, err := mail.ParseAddressList(value)
			if err != nil {
				addrs = []*mail.Address{{Address: strings.Trim(strings.TrimSpace(value), "<>")}}
			}
			for _, a := range addrs {
				if r, t, ok := v.Decode(a.Address); ok {
					return r, t, true
				}
			}
		}
	}
	return "", "", false
}

// useVERPRecipient gives rep the VERP recipient addr when rep names no
// recipient address of its own, and reports whether it did. What the
// report did read about the recipient (status, diagnostic) is kept;
// without it the status is looked for in the body text, and with none
// found the failure counts as soft: nothing is suppressed on no evidence.
func useVERPRecipient(rep *parse.Report, addr string, raw []byte) bool {
	for _, r := range rep.Recipients {
		if _, err := parse.NormalizeAddress(r.Address); err == nil {
			return false
		}
	}
	var r parse.Recipient
	if len(rep.Recipients) > 0 {
		r = rep.Recipients[0]
	}
	r.Address = addr
	switch rep.Kind {
	case parse.KindComplaint:
		r.Action, r.Reason, r.Class = parse.ActionFailed, parse.ReasonComplaint, parse.ClassComplaint
	case parse.KindAutoReply:
		r.Action, r.Reason, r.Class = parse.ActionFailed, parse.ReasonAutoReply, parse.ClassNone
	default:
		if rep.Kind != parse.KindDelay {
			rep.Kind = parse.KindBounce
			r.Action = parse.ActionFailed
		} else {
			r.Action = parse.ActionDelayed
		}
		if r.Status == "" && r.ReplyCode == "" {
			r.Status, r.ReplyCode, r.Diagnostic = statusInBody(raw)
		}
		v := parse.Classify(r.Status, r.ReplyCode, r.Diagnostic)
		r.Reason, r.Class, r.Evidence = v.Reason, v.Class, v.Evidence
		if r.Class == parse.ClassNone {
			// A 2.x.x code in mail sent back to a bounce address says nothing.
			r.Reason, r.Class = parse.ReasonOther, parse.ClassSoft
		}
		if rep.Kind == parse.KindDelay && r.Class == parse.ClassHard {
			r.Class = parse.ClassSoft
		}
	}
	r.Suppress = r.Class.Suppresses()
	rep.Recipients = []parse.Recipient{r}
	return true
}

// statusInBody returns the first enhanced status code in the body of raw,
// else the first SMTP reply code that starts a line (as in a quoted SMTP
// transcript), and the line it was found on.
func statusInBody(raw []byte) (parse.Status, string, string) {
	body := raw
	if i := bytes.Index(body, []byte("\n\n")); i >= 0 {
		body = body[i+2:]
	} else if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		body = body[i+4:]
	}
	if len(body) > maxHeaderScan {
		body = body[:maxHeaderScan]
	}
	text := string(body)
	for line := range strings.Lines(text) {
		if st := parse.FindStatus(line); st != "" {
			return st, parse.FindReplyCode(line), diagnosticLine(line)
		}
	}
	for line := range strings.Lines(text) {
		trimmed := strings.TrimSpace(line)
		if reply := parse.FindReplyCode(trimmed); reply != "" && strings.HasPrefix(trimmed, reply) {
			return "", reply, diagnosticLine(line)
		}
	}
	return "", "", ""
}

func diagnosticLine(line string) string {
	line = strings.TrimSpace(line)
	if len(line) > 500 {
		line = strings.ToValidUTF8(line[:500], "")
	}
	return line
}
