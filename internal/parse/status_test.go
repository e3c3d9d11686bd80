package parse

import "testing"

func TestParseStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want Status
		ok   bool
	}{
		{"5.1.1", "5.1.1", true},
		{"4.2.2", "4.2.2", true},
		{"5.7.26", "5.7.26", true},
		{"5.1.10", "5.1.10", true},
		{"#5.1.1", "5.1.1", true},
		{"(5.1.1)", "5.1.1", true},
		{"511", "5.1.1", true},
		{"5.01.001", "5.1.1", true},
		{"3.1.1", "", false},
		{"5.1", "", false},
		{"5.1.1.1", "", false},
		{"abc", "", false},
		{"", "", false},
		{"5.1.1111", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseStatus(tt.in)
			if got != tt.want || (err == nil) != tt.ok {
				t.Errorf("ParseStatus(%q) = %q, %v, want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestFindStatusAndReply(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text   string
		status Status
		reply  string
	}{
		{"550 5.1.1 <a@b>: Recipient address rejected", "5.1.1", "550"},
		{"smtp; 452 4.2.2 Mailbox full", "4.2.2", "452"},
		{"host said: 503 5.5.1 Error: need RCPT command", "5.5.1", "503"},
		{"connect to 192.0.2.1:25: Connection timed out", "", ""},
		{"version 10.5.1.2 ready", "", ""},
		{"550-5.7.26 Unauthenticated email", "5.7.26", "550"},
		{"Mailbox size 5521 KB", "", ""},
		{"rejected by aspmx.l.google.com. [2a00:1450:400c:c05::1a]. The error that the other server returned was: 550-5.1.1 The email account", "5.1.1", "550"},
		{"queue id 4FA550B2C1 deferred", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			if got := FindStatus(tt.text); got != tt.status {
				t.Errorf("FindStatus(%q) = %q, want %q", tt.text, got, tt.status)
			}
			if got := FindReplyCode(tt.text); got != tt.reply {
				t.Errorf("FindReplyCode(%q) = %q, want %q", tt.text, got, tt.reply)
			}
		})
	}
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"5.1.1", "511", "#4.2.2", "5.7.26", "x", ""} {
		f.Add(s)
	}
	// The corpus's codes and the lines that carry them.
	for _, s := range corpusFieldValues(f, "Status", "Diagnostic-Code") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatus(s)
		if err != nil {
			return
		}
		again, err := ParseStatus(string(st))
		if err != nil || again != st {
			t.Errorf("ParseStatus(%q) = %q does not read back: %q, %v", s, st, again, err)
		}
		if c := st.Class(); c != 2 && c != 4 && c != 5 {
			t.Errorf("ParseStatus(%q) class %d", s, c)
		}
		_ = FindStatus(s)
		_ = FindReplyCode(s)
	})
}
