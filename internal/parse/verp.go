package parse

import (
	"net/mail"
	"strings"
)

// VERP describes variable envelope return paths (VERP): the sender encodes
// each recipient in the bounce address, so a bounce names its recipient
// even when the report itself does not:
//
//	bounces+user=example.com@bounce.example.net
//	bounces+user=example.com+c42@bounce.example.net   (with a token)
//
// The token, when present, maps back to a campaign or message id.
type VERP struct {
	Prefix    string // "bounces"
	Separator byte   // '+' (default) or '-'
}

// Decode returns the original recipient (normalised) and token encoded in
// addr, or ok false when addr is not a VERP address of this shape. Tokens
// need a separator that cannot appear in a domain name, so with '-' none
// is recognised.
func (v VERP) Decode(addr string) (recipient, token string, ok bool) {
	sep := v.Separator
	if sep == 0 {
		sep = '+'
	}
	norm, err := NormalizeAddress(addr)
	if err != nil {
		return "", "", false
	}
	local := norm[:strings.LastIndexByte(norm, '@')]
	if len(local) <= len(v.Prefix)+1 || !strings.EqualFold(local[:len(v.Prefix)], v.Prefix) || local[len(v.Prefix)] != sep {
		return "", "", false
	}
	rest := local[len(v.Prefix)+1:]
	eq := strings.LastIndexByte(rest, '=')
	if eq <= 0 || eq == len(rest)-1 {
		return "", "", false
	}
	user, domain := rest[:eq], rest[eq+1:]
	if sep != '-' {
		if i := strings.IndexByte(domain, sep); i >= 0 {
			domain, token = domain[:i], domain[i+1:]
		}
	}
	recipient, err = NormalizeAddress(user + "@" + domain)
	if err != nil || !strings.Contains(domain, ".") {
		return "", "", false
	}
	return recipient, token, true
}

// VERPMatch is the VERP address a message was sent to.
type VERPMatch struct {
	// Recipient is the original recipient it encodes (normalised), and
	// Token its optional token.
	Recipient string `json:"recipient"`
	Token     string `json:"token,omitempty"`
	// Field is where it was found: "envelope" (the SMTP RCPT TO), or the
	// header field (X-Original-To, Delivered-To, Envelope-To, To,
	// Return-Path of the returned message).
	Field string `json:"field"`
	// Used says the report named no recipient of its own, so this one
	// stands in.
	Used bool `json:"used"`
}

// verpHeaders are where a delivered bounce keeps the address it was
// sent to, most trustworthy first: X-Original-To is the envelope
// recipient as the receiving MTA got it, before any alias rewrote it;
// Delivered-To the address after rewriting; Envelope-To Exim's copy of
// the envelope; and To, written by the bounce's sender (a DSN's To is the
// envelope sender of the message that bounced: the VERP address itself).
var verpHeaders = []string{"X-Original-To", "Delivered-To", "Envelope-To", "To"}

// maxVERPMatches caps the VERP addresses one message is taken to be
// about: an SMTP transaction's recipients, or one address list.
const maxVERPMatches = 100

// find looks for the VERP addresses of this shape a message was sent to,
// in the first place that names any: every envelope recipient that
// decodes (one transaction can carry the same bounce to several VERP
// addresses), else the first field of verpHeaders, in that order, that
// holds one (every address of its list that decodes), else the returned
// message's Return-Path. Each original recipient is named once, with the
// first of its addresses.
func (v VERP) find(envelope []string, top, original header) []VERPMatch {
	if v.Prefix == "" {
		return nil
	}
	var out []VERPMatch
	seen := map[string]bool{}
	add := func(addr, field string) {
		r, t, ok := v.Decode(addr)
		if !ok || seen[AddressKey(r)] || len(out) == maxVERPMatches {
			return
		}
		seen[AddressKey(r)] = true
		out = append(out, VERPMatch{Recipient: r, Token: t, Field: field})
	}
	for _, a := range envelope {
		add(a, "envelope")
	}
	try := func(h header, name string) {
		for _, f := range h {
			if len(out) > 0 {
				return
			}
			if !equalFoldBytes(f.name, name) {
				continue
			}
			value := unfold(f.value)
			addrs, err := mail.ParseAddressList(value)
			if err != nil {
				addrs = []*mail.Address{{Address: strings.Trim(strings.TrimSpace(value), "<>")}}
			}
			for _, a := range addrs {
				add(a.Address, name)
			}
		}
	}
	for _, name := range verpHeaders {
		try(top, name)
	}
	try(original, "Return-Path")
	return out
}

// namesRecipient reports whether rep names a recipient address of its
// own.
func namesRecipient(rep *Report) bool {
	for _, r := range rep.Recipients {
		if _, err := NormalizeAddress(r.Address); err == nil {
			return true
		}
	}
	return false
}

// standIn makes addr, found by VERP or a recipient header, the recipient
// of a report that names none. What the report did read about its
// recipient (status, diagnostic) is kept; a complaint or an automatic
// reply stays one; anything else sent back to the bounce address is a
// failure, read from the report's text. With no code or known words
// found, the failure counts as soft: nothing is suppressed on no
// evidence, and a delay never suppresses.
//
// Several addresses (a bounce sent to several VERP addresses at once)
// each get a recipient, read alike: the report names none of them.
func (m *message) standIn(rep *Report, addrs ...string) {
	if len(addrs) == 0 {
		return
	}
	addr := addrs[0]
	var r Recipient
	switch {
	case len(rep.Recipients) > 0:
		r = rep.Recipients[0]
		r.Address = addr
	case rep.Kind == KindComplaint:
		r = feedbackRecipient(addr, "")
	case rep.Kind == KindAutoReply:
		r = Recipient{Address: addr, Action: ActionFailed, Reason: ReasonAutoReply, Class: ClassNone}
	default:
		report, _ := splitReturned(m.text)
		d := newTextReport(report, nil).draftFor(block{addr: addr}, true)
		if d.Diagnostic == "" {
			d.Diagnostic = firstLines(report, 3)
		}
		r = d.finish()
		if rep.Engine == "" {
			rep.Engine = "VERP"
		}
	}
	delivered := r.Action == ActionDelivered || r.Action == ActionRelayed || r.Action == ActionExpanded
	if rep.Kind != KindComplaint && rep.Kind != KindAutoReply && !delivered {
		switch {
		case r.Action == ActionDelayed || rep.Kind == KindDelay:
			r.Action = ActionDelayed
			if r.Class == ClassHard {
				r.Class = ClassSoft
			}
		case r.Class == ClassNone:
			// A success code in mail sent back to a bounce address says
			// nothing about the recipient.
			r.Action, r.Reason, r.Class = ActionFailed, ReasonOther, ClassSoft
		}
	}
	r.Suppress = r.Class.Suppresses()
	rep.Recipients = make([]Recipient, len(addrs))
	for i, a := range addrs {
		rep.Recipients[i] = r
		rep.Recipients[i].Address = a
	}
}
