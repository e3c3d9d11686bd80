// Package dsntest builds RFC 3464 delivery status notifications for tests,
// shaped like the ones Postfix sends.
package dsntest

import (
	"fmt"
	"strings"
)

// Rcpt is one recipient block of a DSN.
type Rcpt struct {
	Address    string
	Action     string // failed when empty
	Status     string // 5.1.1
	Diagnostic string // "smtp; 550 5.1.1 <...>: Recipient address rejected"
}

// DSN returns a Postfix-style bounce for the recipients. id makes the
// bytes (and so the sha256) unique.
func DSN(id string, rcpts ...Rcpt) []byte {
	var b strings.Builder
	boundary := "BOUNDARY." + id
	fmt.Fprintf(&b, "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n")
	fmt.Fprintf(&b, "To: sender@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n")
	fmt.Fprintf(&b, "Date: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-Id: <%s@mx.example.net>\r\n", id)
	fmt.Fprintf(&b, "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n")
	fmt.Fprintf(&b, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n", boundary)
	fmt.Fprintf(&b, "This is a MIME-encapsulated message.\r\n\r\n--%s\r\n", boundary)
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=us-ascii\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n--%s\r\n", boundary)
	fmt.Fprintf(&b, "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\nX-Postfix-Queue-ID: %s\r\nArrival-Date: Mon, 2 Nov 2026 09:59:58 +0000\r\n", id)
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
