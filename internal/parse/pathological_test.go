package parse

import (
	"bytes"
	"strings"
	"testing"
)

// pathological builds inputs just under MaxInputSize that used to make
// (or could make) a parser quadratic: one endless line of phrases and
// addresses, endless folded header and DSN field continuations, a
// thousand nested multiparts, a wall of boundaries, a huge base64 part.
func pathological() map[string][]byte {
	const size = MaxInputSize - 4096
	fill := func(prefix, unit, suffix string) []byte {
		var b bytes.Buffer
		b.WriteString(prefix)
		for b.Len()+len(unit)+len(suffix) < size {
			b.WriteString(unit)
		}
		b.WriteString(suffix)
		return b.Bytes()
	}
	dsnHead := "From: MAILER-DAEMON@example.net\nSubject: Undelivered Mail\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
	nested := func() []byte {
		var b bytes.Buffer
		b.WriteString("From: MAILER-DAEMON@example.net\nContent-Type: multipart/mixed; boundary=b0\n\n")
		for i := 0; i < 1000; i++ {
			b.WriteString("--b" + itoaN(i) + "\nContent-Type: multipart/mixed; boundary=b" + itoaN(i+1) + "\n\n")
		}
		return fill(b.String(), "user unknown <a@example.com>: 550 5.1.1\n", "")
	}
	return map[string][]byte{
		"one long line of phrases and addresses": fill("From: MAILER-DAEMON@example.net\nSubject: failure notice\n\n",
			"<user@example.com>: 550 5.1.1 user unknown ----- original message ----- this is a copy of the message rcpt to: ", "\n"),
		"one long line of at signs":      fill("From: MAILER-DAEMON@example.net\nSubject: Returned mail\n\n", "@a.b@", "\n"),
		"many recipients of one address": fill("From: MAILER-DAEMON@example.net\nSubject: Returned mail\n\n", "550 5.1.1 <user@example.com>... User unknown\n", ""),
		"endless folded header":          fill("From: MAILER-DAEMON@example.net\nSubject: x", "\n y", "\n\nbody\n"),
		"endless folded DSN field":       fill(dsnHead+"Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550", "\n 5.1.1 user unknown", "\n\n--B--\n"),
		"many DSN recipients":            fill(dsnHead, "Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.1.1\n\n", "--B--\n"),
		"nested multiparts":              nested(),
		"a wall of boundaries":           fill("From: MAILER-DAEMON@example.net\nContent-Type: multipart/mixed; boundary=B\n\n", "--B\n\n", "--B--\n"),
		"boundary prefixes":              fill("From: MAILER-DAEMON@example.net\nContent-Type: multipart/mixed; boundary=BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n\n", "--BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "\n"),
		"huge base64 part":               fill("From: MAILER-DAEMON@example.net\nContent-Type: multipart/report; boundary=B\n\n--B\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n", "RmluYWwtUmVjaXBpZW50OiByZmM4MjI7IGFAZXhhbXBsZS5jb20KCg==\n", "\n--B--\n"),
		"bare carriage returns":          fill("From: MAILER-DAEMON@example.net\rSubject: failure notice\r\r", "<a@example.com>:\r550 user unknown\r", ""),
		"mbox of many messages":          fill("", "From MAILER-DAEMON Mon Jan  1 00:00:00 2024\nFrom: MAILER-DAEMON@example.net\nSubject: failure notice\n\n<a@example.com>:\n550 5.1.1 user unknown\n\n", ""),
		"json that never ends":           fill("From: no-reply@sns.amazonaws.com\n\n{\"notificationType\":\"Bounce\",\"bounce\":{\"bouncedRecipients\":[", "{\"emailAddress\":\"a@example.com\"},", "]}}\n"),
		"quoted-printable soft breaks":   fill("From: MAILER-DAEMON@example.net\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n", "=\n=3D", "\n"),
		"header with no body":            []byte("From: x@example.com\nSubject: " + strings.Repeat("=?utf-8?q?a?= ", size/14)),
	}
}

func itoaN(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestPathologicalInputs feeds Parse inputs of nearly 10 MiB shaped to
// provoke super-linear work. It asserts only that Parse returns with a
// report: the time it takes is bounded by the input size (the test would
// run for hours otherwise), never measured here.
func TestPathologicalInputs(t *testing.T) {
	for name, raw := range pathological() {
		t.Run(name, func(t *testing.T) {
			if len(raw) > MaxInputSize {
				t.Fatalf("input is %d bytes, over the cap", len(raw))
			}
			rep, _ := Parse(raw)
			if rep == nil {
				t.Fatalf("Parse returned a nil report")
			}
		})
	}
}
