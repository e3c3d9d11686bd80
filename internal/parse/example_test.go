package parse_test

import (
	"fmt"

	"github.com/bounced/bounced/internal/parse"
)

// Parse reads a bounce of any shape, here a Postfix RFC 3464 report, and
// says for each recipient what happened, why, and whether to stop mailing.
func ExampleParse() {
	raw := []byte(`From: MAILER-DAEMON@mx.example.net
To: sender@example.org
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary=B

--B
Content-Type: text/plain

<user@example.com>: host mx.example.com said: 550 5.1.1 <user@example.com>:
    Recipient address rejected: User unknown (in reply to RCPT TO command)

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; user@example.com
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <user@example.com>: Recipient address rejected: User unknown

--B--
`)
	rep, err := parse.Parse(raw)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Kind, rep.ReportingMTA)
	for _, r := range rep.Recipients {
		fmt.Println(r.Address, r.Status, r.Reason, r.Class, "suppress:", r.Suppress)
	}
	// Output:
	// bounce mx.example.net
	// user@example.com 5.1.1 user_unknown hard suppress: true
}

// A plain-text bounce with no report part, as qmail sends them: the
// sender's own misconfiguration is told apart and never suppresses.
func ExampleParse_plainText() {
	raw := []byte(`From: MAILER-DAEMON@mx.example.net
To: sender@example.org
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<friend@example.com>:
Remote host said: 553 5.7.1 <friend@example.com>: Relay access denied
Giving up on 192.0.2.7.
`)
	rep, _ := parse.Parse(raw)
	for _, r := range rep.Recipients {
		fmt.Println(r.Address, r.Status, r.Reason, r.Class, "suppress:", r.Suppress)
	}
	// Output:
	// friend@example.com 5.7.1 relay_denied sender suppress: false
}

// ParseWithOptions recovers the recipient of a report that names none from
// the VERP address the bounce was sent to.
func ExampleParseWithOptions() {
	raw := []byte(`From: postmaster@mx.example.net
To: bounces+user=example.com@bounce.example.org
Subject: Undeliverable message

Your message could not be delivered: 550 5.1.1 Mailbox does not exist.
`)
	rep, _ := parse.ParseWithOptions(raw, parse.Options{VERP: parse.VERP{Prefix: "bounces"}})
	for _, r := range rep.Recipients {
		fmt.Println(r.Address, r.Action, r.Status, r.Reason)
	}
	// Output:
	// user@example.com failed 5.1.1 user_unknown
}
