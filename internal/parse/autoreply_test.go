package parse

import (
	"os"
	"path/filepath"
	"testing"
)

func TestAutoReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		kind      Kind
		addr      string
	}{
		{"rfc 3834", "From: Jane <Jane@Example.com>\nTo: news@example.org\nSubject: Away\nAuto-Submitted: auto-replied\n\nBack on Monday.\n", KindAutoReply, "Jane@example.com"},
		{"x-autoreply", "From: jane@example.com\nTo: news@example.org\nSubject: Re: News\nX-Autoreply: yes\n\nAway.\n", KindAutoReply, "jane@example.com"},
		{"out of office subject from exchange", "From: jane@example.com\nTo: news@example.org\nSubject: Out of Office: News\nX-Auto-Response-Suppress: All\n\nAway.\n", KindAutoReply, "jane@example.com"},
		{"localised subject", "From: juana@example.com\nTo: news@example.org\nSubject: =?utf-8?q?Respuesta_autom=C3=A1tica=3A_News?=\nAuto-Submitted: auto-generated\n\nFuera.\n", KindAutoReply, "juana@example.com"},
		{"challenge response", "From: jane@example.com\nTo: news@example.org\nSubject: Please verify\n\nI use a spam filter. Please click the link below to confirm you are a person.\n", KindAutoReply, "jane@example.com"},
		{"list moderation", "From: list-owner@example.net\nTo: news@example.org\nSubject: Post held\nList-Id: <l.example.net>\n\nYour message is being held until the list moderator can review it.\n", KindAutoReply, "list-owner@example.net"},
		{"bounce that says auto-replied", "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\nTo: news@example.org\nSubject: Mail delivery failed\nAuto-Submitted: auto-replied\nX-Failed-Recipients: gone@example.com\n\nThe following address(es) failed:\n\n  gone@example.com\n    550 5.1.1 user unknown (in reply to RCPT TO command)\n", KindBounce, "gone@example.com"},
		{"ordinary mail", "From: jane@example.com\nTo: news@example.org\nSubject: Hello\n\nHi there.\n", KindNotBounce, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Parse([]byte(tt.raw))
			if err != nil {
				t.Fatalf("Parse() error %v", err)
			}
			if rep.Kind != tt.kind {
				t.Fatalf("Parse() kind = %s, want %s", rep.Kind, tt.kind)
			}
			if tt.addr == "" {
				if len(rep.Recipients) != 0 {
					t.Errorf("Parse() recipients = %+v, want none", rep.Recipients)
				}
				return
			}
			if len(rep.Recipients) != 1 || rep.Recipients[0].Address != tt.addr {
				t.Fatalf("Parse() recipients = %+v, want %s", rep.Recipients, tt.addr)
			}
			r := rep.Recipients[0]
			if tt.kind == KindAutoReply && (r.Action != ActionDelivered || r.Reason != ReasonAutoReply || r.Class != ClassNone || r.Suppress) {
				t.Errorf("auto-reply recipient = %+v, want delivered, auto_reply, none, no suppression", r)
			}
		})
	}
}

// TestCorpusAutoReplies checks the corpus's RFC 3834 messages are
// auto-replies naming their sender, and never bounces.
func TestCorpusAutoReplies(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/sisimai/*/rfc3834-*.eml")
	if len(files) < 5 {
		t.Fatalf("found %d RFC 3834 corpus files", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := Parse(raw)
		if rep.Kind != KindAutoReply || len(rep.Recipients) != 1 || rep.Recipients[0].Reason != ReasonAutoReply {
			t.Errorf("Parse(%s) = %s %+v, want one auto_reply recipient", f, rep.Kind, rep.Recipients)
		}
	}
}
