package parse

import (
	"testing"
)

// A bounce that names no recipient at all: only the VERP address it was
// sent to, or a header of the returned message, says who bounced.
const anonymousBounce = "From: MAILER-DAEMON@mx.example.net\n" +
	"To: bounces+jane.doe=example.com+c42@bounce.example.org\n" +
	"Subject: Undeliverable message\n" +
	"Content-Type: multipart/mixed; boundary=X\n\n" +
	"--X\nContent-Type: text/plain\n\nYour message could not be delivered: 550 mailbox unavailable.\n\n" +
	"--X\nContent-Type: message/rfc822\n\n" +
	"Message-ID: <n-1@example.org>\nFrom: news@example.org\nTo: undisclosed-recipients:;\nX-Rcpt-To: jane.doe@example.com\nSubject: News\n\nHi\n--X--\n"

func TestParseWithOptionsRecoversRecipient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  Options
		want string
	}{
		{"no options", Options{}, ""},
		{"verp", Options{VERP: VERP{Prefix: "bounces"}}, "jane.doe@example.com"},
		{"verp of another shape", Options{VERP: VERP{Prefix: "return", Separator: '-'}}, ""},
		{"configured header", Options{RecipientHeaders: []string{"X-Rcpt-To"}}, "jane.doe@example.com"},
		{"missing header", Options{RecipientHeaders: []string{"X-Other"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := ParseWithOptions([]byte(anonymousBounce), tt.opt)
			if err != nil {
				t.Fatalf("ParseWithOptions() error %v", err)
			}
			got := ""
			if len(rep.Recipients) > 0 {
				got = rep.Recipients[0].Address
			}
			if got != tt.want {
				t.Errorf("ParseWithOptions(%+v) recipient = %q, want %q", tt.opt, got, tt.want)
			}
			if tt.want != "" && (rep.Kind != KindBounce || rep.Recipients[0].Reason == "" || rep.Recipients[0].Status.Class() != 5) {
				t.Errorf("ParseWithOptions(%+v) = %+v, want a bounce with a reason and a 5.x.x status", tt.opt, rep)
			}
		})
	}
}

func TestParseWithOptionsSizeCap(t *testing.T) {
	t.Parallel()
	raw := []byte(anonymousBounce)
	if _, err := ParseWithOptions(raw, Options{MaxSize: 100}); err != ErrTooLarge {
		t.Errorf("ParseWithOptions(MaxSize 100) error %v, want ErrTooLarge", err)
	}
	if _, err := ParseWithOptions(raw, Options{MaxSize: len(raw)}); err != nil {
		t.Errorf("ParseWithOptions(MaxSize len) error %v, want nil", err)
	}
}
