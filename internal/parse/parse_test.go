package parse

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bounced/bounced/internal/dsntest"
)

func TestParsePostfixDSN(t *testing.T) {
	t.Parallel()
	raw := dsntest.DSN("Q1",
		dsntest.Rcpt{Address: "User@Example.COM", Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 <User@Example.COM>: Recipient address rejected: User unknown in virtual mailbox table"},
		dsntest.Rcpt{Address: "full@example.com", Status: "4.2.2", Action: "delayed", Diagnostic: "smtp; 452 4.2.2 Mailbox full"},
		dsntest.Rcpt{Address: "auth@example.com", Status: "5.5.1", Diagnostic: "smtp; 503 5.5.1 Error: need RCPT command"},
	)
	rep, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse() error %v", err)
	}
	if rep.Kind != KindBounce || rep.ReportingMTA != "mx.example.net" || rep.OriginalMessageID != "<orig-Q1@example.org>" {
		t.Errorf("Parse() = kind %s mta %q msgid %q", rep.Kind, rep.ReportingMTA, rep.OriginalMessageID)
	}
	want := []Recipient{
		{Address: "User@example.com", Action: ActionFailed, Status: "5.1.1", ReplyCode: "550", Reason: ReasonUserUnknown, Class: ClassHard, Suppress: true},
		{Address: "full@example.com", Action: ActionDelayed, Status: "4.2.2", ReplyCode: "452", Reason: ReasonDelayed, Class: ClassSoft},
		{Address: "auth@example.com", Action: ActionFailed, Status: "5.5.1", ReplyCode: "503", Reason: ReasonProtocolError, Class: ClassSender},
	}
	if len(rep.Recipients) != len(want) {
		t.Fatalf("Parse() got %d recipients, want %d", len(rep.Recipients), len(want))
	}
	for i, w := range want {
		g := rep.Recipients[i]
		if g.Address != w.Address || g.Action != w.Action || g.Status != w.Status || g.ReplyCode != w.ReplyCode ||
			g.Reason != w.Reason || g.Class != w.Class || g.Suppress != w.Suppress || g.RemoteMTA != "mx.remote.example" {
			t.Errorf("recipient %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestParseLineEndings(t *testing.T) {
	t.Parallel()
	crlf := dsntest.DSN("LE", dsntest.Rcpt{Address: "a@example.com", Status: "5.1.1"})
	lf := bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\n"))
	cr := bytes.ReplaceAll(crlf, []byte("\r\n"), []byte("\r"))
	for name, raw := range map[string][]byte{"crlf": crlf, "lf": lf, "cr": cr} {
		rep, err := Parse(raw)
		if err != nil || len(rep.Recipients) != 1 || rep.Recipients[0].Status != "5.1.1" {
			t.Errorf("Parse(%s) = %+v, %v, want one 5.1.1 recipient", name, rep, err)
		}
	}
}

func TestParseBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  []byte
		err  error
	}{
		{"empty", nil, ErrEmpty},
		{"too large", make([]byte, MaxInputSize+1), ErrTooLarge},
		{"no header", []byte("\r\n\r\njust a body"), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := Parse(tt.raw)
			if !errors.Is(err, tt.err) || rep == nil {
				t.Errorf("Parse(%s) = %v, %v, want non-nil report and %v", tt.name, rep, err, tt.err)
			}
		})
	}
}

// TestCorpusNeverPanics reads every shared corpus file; each gets an
// answer (the accuracy bars come with the full parser).
func TestCorpusNeverPanics(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/sisimai/*/*.eml")
	more, _ := filepath.Glob("testdata/sisimai/malformed/*")
	files = append(files, more...)
	if len(files) < 400 {
		t.Fatalf("found %d corpus files, want the whole shared corpus", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := Parse(raw)
		if rep == nil {
			t.Errorf("Parse(%s) returned nil report", f)
		}
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/sisimai/eml/*.eml")
	for i, file := range files {
		if i%8 != 0 { // a spread of engines keeps the seed corpus quick
			continue
		}
		if raw, err := os.ReadFile(file); err == nil {
			f.Add(raw)
		}
	}
	f.Add(dsntest.DSN("F", dsntest.Rcpt{Address: "a@b.c", Status: "5.1.1"}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		rep, err := Parse(raw)
		if rep == nil {
			t.Fatalf("Parse returned nil report (err %v)", err)
		}
		for _, r := range rep.Recipients {
			if r.Suppress && r.Class != ClassHard && r.Class != ClassComplaint {
				t.Errorf("recipient %q suppresses with class %s", r.Address, r.Class)
			}
			if r.Class == ClassSender && r.Suppress {
				t.Errorf("sender-class recipient %q suppresses", r.Address)
			}
			if strings.ContainsAny(string(r.Status), " \n") {
				t.Errorf("status %q has spaces", r.Status)
			}
		}
	})
}
