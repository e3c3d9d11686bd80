package store

// bodyDict1 is preset dictionary 1 of raw bodies' DEFLATE streams
// (raw_messages.deflate_dict = 1; compress/flate's NewWriterDict): the
// strings raw inputs and their parse results share, which a body of a few
// KiB would otherwise spell out once each. It holds header and field names and
// values of mail (RFC 5322, MIME) and delivery reports (RFC 3464, 6522,
// 3463), and the field names of parse.Report as JSON; nearer the end is
// cheaper to refer to.
//
// Stored bodies name the dictionary they were compressed with, so this
// text must never change: a better one is added as bodyDict2, and
// bodyDicts keeps every dictionary any row may name.
const bodyDict1 = "" +
	"Received: from by with ESMTPS id for <>; " +
	"Mon, Tue, Wed, Thu, Fri, Sat, Sun, Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec +0000 (UTC)\r\n" +
	"Content-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: quoted-printable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nContent-Type: text/plain; charset=us-ascii\r\n" +
	"Content-Type: message/rfc822\r\nContent-Type: text/rfc822-headers\r\n" +
	"Return-Path: <>\r\nFrom: MAILER-DAEMON@\r\nTo: \r\nSubject: \r\nDate: \r\nMessage-Id: <@>\r\nMessage-ID: <@>\r\n" +
	"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"\"\r\n\r\n--\r\n" +
	"Content-Type: message/delivery-status\r\n\r\n" +
	"Reporting-MTA: dns; \r\nReceived-From-MTA: dns; \r\nArrival-Date: \r\n\r\n" +
	"Final-Recipient: rfc822; \r\nOriginal-Recipient: rfc822;\r\nAction: failed\r\nAction: delayed\r\n" +
	"Status: 5.1.1\r\nStatus: 4.\r\nRemote-MTA: dns; \r\nDiagnostic-Code: smtp; 550 5.1.1 <>: \r\n" +
	"Last-Attempt-Date: \r\nWill-Retry-Until: \r\n\r\n" +
	`{"kind":"bounce","reporting_mta":"","original_message_id":"<@>","arrival_date":"",` +
	`"original":{"message_id":"<@>","subject":"","from":"","to":""},"recipients":[{"address":"",` +
	`"original_recipient":"","action":"failed","status":"5.1.1","reply_code":"550","diagnostic":"550 5.1.1 <>: ",` +
	`"remote_mta":"","reason":"user_unknown","class":"hard","suppress":true,` +
	`"evidence":{"from":"status","text":"5.1.1","rule":"X.1.1 Bad destination mailbox address"}}],"engine":"RFC3464"}`
