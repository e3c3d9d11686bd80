package parse

import (
	"os"
	"testing"
)

// TestWhichRecipient: the recipient is the one the report names, never a
// rewritten internal address nor the returned message's To: when the
// report names someone else.
func TestWhichRecipient(t *testing.T) {
	t.Parallel()
	simsMS := []byte("From: MAILER-DAEMON@mx.example.org\nTo: s@example.org\nSubject: Delivery Notification: Delivery has failed\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n\n--B\nContent-Type: message/delivery-status\n\n" +
		"Reporting-MTA: dns; mx.example.org\n\nOriginal-Recipient: rfc822;jane@example.com\nFinal-Recipient: rfc822;jane@ims-ms-daemon\n" +
		"Action: failed\nStatus: 5.2.1\nDiagnostic-Code: smtp; 550 5.2.1 user disabled\n\n--B--\n")
	ndr, err := os.ReadFile("testdata/quirks/exchange-ndr-list-member.eml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		raw  []byte
		want string
	}{
		{"Final-Recipient rewritten to an internal daemon", simsMS, "jane@example.com"},
		{"Exchange NDR to a list names the member", ndr, "jane.doe@example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, _ := Parse(tt.raw)
			if len(rep.Recipients) != 1 || rep.Recipients[0].Address != tt.want {
				t.Errorf("Parse() recipients = %+v, want %s only", rep.Recipients, tt.want)
			}
		})
	}
}

// TestExpiryIsFinal: a final failure after retries is failed, expired,
// 5.x, soft, with the last transient reply kept as the remote's words.
func TestExpiryIsFinal(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"exim-dsn-retry-timeout", "opensmtpd-envelope-expired", "exim-retry-timeout"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile("testdata/quirks/" + file + ".eml")
			if err != nil {
				t.Fatal(err)
			}
			rep, _ := Parse(raw)
			if rep.Kind != KindBounce || len(rep.Recipients) != 1 {
				t.Fatalf("Parse(%s) = kind %s, %d recipients; want one bounce", file, rep.Kind, len(rep.Recipients))
			}
			r := rep.Recipients[0]
			if r.Action != ActionFailed || r.Reason != ReasonExpired || r.Status.Class() != 5 || r.Suppress || r.Evidence.From != EvidenceExpiry || r.Diagnostic == "" {
				t.Errorf("Parse(%s) = %s %s %s suppress %t evidence %+v diagnostic %q; want failed, expired, 5.x, kept, evidence from expiry",
					file, r.Action, r.Status, r.Reason, r.Suppress, r.Evidence, r.Diagnostic)
			}
		})
	}
}

// TestStatusInText: a code in a plain-text bounce's diagnostic is found
// and used.
func TestStatusInText(t *testing.T) {
	t.Parallel()
	raw := []byte("From: MAILER-DAEMON@mx.example.org\nTo: s@example.org\nSubject: Returned mail: see transcript for details\n\n" +
		"The original message was received at Thu, 3 Dec 2026 10:00:00 +0000\n\n   ----- The following addresses had permanent fatal errors -----\n" +
		"<gone@example.com>\n    (reason: 550 5.1.1 <gone@example.com>... Invalid recipient)\n\n   ----- Transcript of session follows -----\n" +
		"... while talking to mx.example.com.:\n>>> RCPT To:<gone@example.com>\n<<< 550 5.1.1 <gone@example.com>... Invalid recipient\n")
	rep, _ := Parse(raw)
	if len(rep.Recipients) != 1 {
		t.Fatalf("Parse() = %d recipients, want 1", len(rep.Recipients))
	}
	if r := rep.Recipients[0]; r.Status != "5.1.1" || r.Reason != ReasonUserUnknown || !r.Suppress {
		t.Errorf("Parse() = %s %s suppress %t, want 5.1.1 user_unknown suppressed", r.Status, r.Reason, r.Suppress)
	}
}

// Mails of our own making for the kinds issue 13 names that the tests
// above and classify_test.go do not reach.
var (
	mail13Expanded = []byte("From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n" +
		"To: news@example.org\n" +
		"Subject: Undelivered Mail Returned to Sender\n" +
		"\n" +
		"This is the mail system at host mx.example.org.\n" +
		"\n" +
		"I'm sorry to have to inform you that your message could not\n" +
		"be delivered to one or more recipients.\n" +
		"\n" +
		"<jdoe@mailstore.internal> (expanded from <john@example.com>): host\n" +
		"    mailstore.internal[10.0.0.5] said: 550 5.1.1 <jdoe@mailstore.internal>:\n" +
		"    Recipient address rejected: User unknown in local recipient table (in reply to RCPT TO command)\n")
	mail13OrigRcpt = []byte("From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n" +
		"To: news@example.org\n" +
		"Subject: Undelivered Mail Returned to Sender\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=B\n" +
		"\n" +
		"--B\n" +
		"Content-Type: text/plain\n" +
		"\n" +
		"<jdoe@mailstore.internal> (expanded from <john@example.com>): host\n" +
		"    mailstore.internal[10.0.0.5] said: 550 5.1.1 <jdoe@mailstore.internal>:\n" +
		"    Recipient address rejected: User unknown (in reply to RCPT TO command)\n" +
		"\n" +
		"--B\n" +
		"Content-Type: message/delivery-status\n" +
		"\n" +
		"Reporting-MTA: dns; mx.example.org\n" +
		"\n" +
		"Final-Recipient: rfc822; jdoe@mailstore.internal\n" +
		"Original-Recipient: rfc822;john@example.com\n" +
		"Action: failed\n" +
		"Status: 5.1.1\n" +
		"Remote-MTA: dns; mailstore.internal\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 <jdoe@mailstore.internal>: Recipient\n" +
		"    address rejected: User unknown\n" +
		"\n" +
		"--B--\n")
	mail13HelpText = []byte("From: MAILER-DAEMON@mx.example.net\n" +
		"To: news@example.org\n" +
		"Subject: failure notice\n" +
		"\n" +
		"Hi. This is the delivery program at mx.example.net.\n" +
		"I was not able to deliver your message to the following addresses.\n" +
		"This is a permanent error.\n" +
		"\n" +
		"<gone@example.net>:\n" +
		"550 5.1.1 No such mailbox here\n" +
		"\n" +
		"If you believe this is wrong, or if mail to postmaster@example.net also fails,\n" +
		"try writing to help@support.example.net instead.\n" +
		"\n" +
		"--- Below this line is a copy of the message.\n" +
		"\n" +
		"To: gone@example.net\n" +
		"From: news@example.org\n" +
		"Subject: Hello\n" +
		"\n" +
		"Hi\n")
	mail13Nested = []byte("From: MAILER-DAEMON@relay.example.com\n" +
		"To: news@example.org\n" +
		"Subject: Delivery Status Notification (Failure)\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=OUT\n" +
		"\n" +
		"--OUT\n" +
		"Content-Type: text/plain\n" +
		"\n" +
		"Delivery to outer@example.com failed.\n" +
		"\n" +
		"--OUT\n" +
		"Content-Type: message/delivery-status\n" +
		"\n" +
		"Reporting-MTA: dns; relay.example.com\n" +
		"\n" +
		"Final-Recipient: rfc822; outer@example.com\n" +
		"Action: failed\n" +
		"Status: 5.2.2\n" +
		"Diagnostic-Code: smtp; 552 5.2.2 Mailbox full\n" +
		"\n" +
		"--OUT\n" +
		"Content-Type: message/rfc822\n" +
		"\n" +
		"From: MAILER-DAEMON@other.example\n" +
		"To: news@example.org\n" +
		"Subject: Undelivered Mail Returned to Sender\n" +
		"MIME-Version: 1.0\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=IN\n" +
		"\n" +
		"--IN\n" +
		"Content-Type: message/delivery-status\n" +
		"\n" +
		"Reporting-MTA: dns; other.example\n" +
		"\n" +
		"Final-Recipient: rfc822; inner@other.example\n" +
		"Action: failed\n" +
		"Status: 5.1.1\n" +
		"Diagnostic-Code: smtp; 550 5.1.1 user unknown\n" +
		"\n" +
		"--IN--\n" +
		"\n" +
		"--OUT--\n")
	mail13ScreenName = []byte("From: Mail Delivery Subsystem <MAILER-DAEMON@aol.example>\n" +
		"To: news@example.org\n" +
		"Subject: Returned mail: User unknown\n" +
		"\n" +
		"The screen name \"jdoe77\" is not accepting mail. Please check the spelling\n" +
		"and try again.\n" +
		"\n" +
		"----- Original message -----\n" +
		"To: jdoe77@aol.example\n" +
		"From: news@example.org\n" +
		"Subject: Hello\n" +
		"\n" +
		"Hi\n")
	mail13DNSTryAgain = []byte("From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\n" +
		"To: news@example.org\n" +
		"Subject: Undelivered Mail Returned to Sender\n" +
		"\n" +
		"This is the mail system at host mx.example.org.\n" +
		"\n" +
		"<someone@flaky.example>: Host or domain name not found. Name service error for\n" +
		"    name=flaky.example type=MX: Host not found, try again\n")
)

// TestIssue13Kinds: one mail per kind, asserting the recipient reported,
// whether it is suppressed, and that nothing else is named.
func TestIssue13Kinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		raw       []byte
		kind      Kind
		want      string
		suppress  bool
		notReason Reason
	}{
		{"text bounce: an internal alias target expanded from the mailed address", mail13Expanded, KindBounce, "john@example.com", true, ""},
		{"DSN: Final-Recipient an internal alias target, Original-Recipient mailed", mail13OrigRcpt, KindBounce, "john@example.com", true, ""},
		{"help text names other addresses: only the recipient", mail13HelpText, KindBounce, "gone@example.net", true, ""},
		{"a bounce inside the returned message: the outer one only", mail13Nested, KindBounce, "outer@example.com", false, ""},
		{"bare screen name not accepting mail: a bounce, recipient from the returned message, kept", mail13ScreenName, KindBounce, "jdoe77@aol.example", false, ""},
		{"DNS trouble is not an unknown domain", mail13DNSTryAgain, KindBounce, "someone@flaky.example", false, ReasonDomainUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, _ := Parse(tt.raw)
			if rep.Kind != tt.kind || len(rep.Recipients) != 1 {
				t.Fatalf("Parse() = kind %s, recipients %+v; want %s with %s only", rep.Kind, rep.Recipients, tt.kind, tt.want)
			}
			r := rep.Recipients[0]
			if r.Address != tt.want || r.Suppress != tt.suppress || (tt.notReason != "" && r.Reason == tt.notReason) {
				t.Errorf("Parse() = %s %s %s suppress %t; want %s suppress %t (reason not %q)",
					r.Address, r.Status, r.Reason, r.Suppress, tt.want, tt.suppress, tt.notReason)
			}
		})
	}
}
