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
