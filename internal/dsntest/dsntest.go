// Package dsntest builds RFC 3464 delivery status notifications for tests,
// shaped like the ones Postfix sends.
package dsntest

import (
	"fmt"
	"strings"
	"time"
)

// Rcpt is one recipient block of a DSN.
type Rcpt struct {
	Address    string
	Action     string // failed when empty
	Status     string // 5.1.1
	Diagnostic string // "smtp; 550 5.1.1 <...>: Recipient address rejected"
}

// start dates the reports DSN builds: the moment this test process
// started. bounced trusts a report's own date only when it lies within 30
// days before receipt, so a fixed date would make tests pass only until
// it aged; one date per process keeps repeated calls byte-identical.
var start = time.Now().UTC().Truncate(time.Second)

// Date is the date DSN writes into its reports (Arrival-Date is two
// seconds earlier).
func Date() time.Time { return start }

// DSN returns a Postfix-style bounce for the recipients, dated Date(). id
// makes the bytes (and so the sha256) unique.
func DSN(id string, rcpts ...Rcpt) []byte { return DSNAt(start, id, rcpts...) }

// DSNAt is DSN dated at: tests on an injected clock pass its time.
func DSNAt(at time.Time, id string, rcpts ...Rcpt) []byte {
	var b strings.Builder
	boundary := "BOUNDARY." + id
	date := at.Format(time.RFC1123Z)
	arrival := at.Add(-2 * time.Second).Format(time.RFC1123Z)
	fmt.Fprintf(&b, "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n")
	fmt.Fprintf(&b, "To: sender@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n")
	fmt.Fprintf(&b, "Date: %s\r\nMessage-Id: <%s@mx.example.net>\r\n", date, id)
	fmt.Fprintf(&b, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&b, "This is a MIME-encapsulated message.\r\n\r\n--%s\r\n", boundary)
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=us-ascii\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n--%s\r\n", boundary)
	fmt.Fprintf(&b, "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\nX-Postfix-Queue-ID: %s\r\nArrival-Date: %s\r\n", id, arrival)
	for _, r := range rcpts {
		action := r.Action
		if action == "" {
			action = "failed"
		}
		fmt.Fprintf(&b, "\r\nFinal-Recipient: rfc822; %s\r\nOriginal-Recipient: rfc822;%s\r\nAction: %s\r\nStatus: %s\r\n", r.Address, r.Address, action, r.Status)
		fmt.Fprintf(&b, "Remote-MTA: dns; mx.remote.example\r\n")
		if r.Diagnostic != "" {
			fmt.Fprintf(&b, "Diagnostic-Code: %s\r\n", r.Diagnostic)
		}
	}
	fmt.Fprintf(&b, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary)
	fmt.Fprintf(&b, "From: sender@example.org\r\nTo: list@example.org\r\nSubject: Newsletter\r\nMessage-Id: <orig-%s@example.org>\r\n\r\n--%s--\r\n", id, boundary)
	return []byte(b.String())
}
