package parse

import (
	"bytes"
	"errors"
	"flag"
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

// TestCorpusAnswered reads every file of the shared corpus, labelled,
// unlabelled and malformed: each gets a report (never a panic or a nil
// report), a known kind, and recipients with valid reasons; a malformed
// file gets an error or a partial result.
func TestCorpusAnswered(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("testdata/sisimai/*/*.eml")
	more, _ := filepath.Glob("testdata/sisimai/malformed/*")
	files = append(files, more...)
	if len(files) < 500 {
		t.Fatalf("found %d corpus files, want the whole shared corpus", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rep, perr := Parse(raw)
		if rep == nil {
			t.Fatalf("Parse(%s) returned nil report", f)
		}
		if perr == nil && rep.Kind != KindNotBounce && len(rep.Recipients) == 0 {
			t.Errorf("Parse(%s) = kind %s with no recipients", f, rep.Kind)
		}
		for _, r := range rep.Recipients {
			if !r.Reason.Valid() || r.Suppress != r.Class.Suppresses() {
				t.Errorf("Parse(%s): recipient %+v", f, r)
			}
		}
		if strings.Contains(f, "/eml/") && len(rep.Recipients) == 0 {
			t.Errorf("Parse(%s) found no recipient in a labelled message", f)
		}
	}
}

// TestMain caps how long the fuzzer minimises each new finding, unless
// -fuzzminimizetime is given: Go's minimiser tries every subset of bytes,
// so a finding of a few KiB stalls a run at 0 execs/s for its full 60s
// default, which makes short CI runs (make fuzz, FUZZTIME=10s) useless.
func TestMain(m *testing.M) {
	if f := flag.Lookup("test.fuzzminimizetime"); f != nil {
		_ = f.Value.Set("200x")
	}
	os.Exit(m.Run())
}

// maxFuzzSeed and maxFuzzInput cap the seeds and inputs of FuzzParse.
const (
	maxFuzzSeed  = 16 << 10
	maxFuzzInput = 64 << 10
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/sisimai/*/*.eml")
	more, _ := filepath.Glob("testdata/sisimai/malformed/*")
	golden, _ := filepath.Glob("testdata/quirks/*.eml")
	mta, _ := filepath.Glob("testdata/mta/eml/*/*.eml")
	for _, file := range append(append(append(files, more...), golden...), mta...) {
		if raw, err := os.ReadFile(file); err == nil {
			// The report comes first; a long returned message after it
			// only slows every execution.
			f.Add(raw[:min(len(raw), maxFuzzSeed)])
		}
	}
	f.Add(dsntest.DSN("F", dsntest.Rcpt{Address: "a@b.c", Status: "5.1.1"}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) > maxFuzzInput {
			return // big inputs are TestPathologicalInputs' job
		}
		rep, err := Parse(raw)
		if rep == nil {
			t.Fatalf("Parse returned nil report (err %v)", err)
		}
		switch rep.Kind {
		case KindBounce, KindDelay, KindDelivery, KindComplaint, KindAutoReply, KindNotBounce:
		default:
			t.Errorf("kind %q", rep.Kind)
		}
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("untyped error %v", err)
		}
		for _, r := range rep.Recipients {
			if r.Suppress != (r.Class == ClassHard || r.Class == ClassComplaint) {
				t.Errorf("recipient %q: suppress %v with class %s", r.Address, r.Suppress, r.Class)
			}
			if !r.Reason.Valid() {
				t.Errorf("recipient %q: reason %q", r.Address, r.Reason)
			}
			if r.Evidence.From == "" || r.Evidence.Rule == "" {
				t.Errorf("recipient %q: no evidence (%+v)", r.Address, r.Evidence)
			}
			switch r.Class {
			case ClassHard, ClassSoft, ClassSender, ClassComplaint, ClassNone:
			default:
				t.Errorf("recipient %q: class %q", r.Address, r.Class)
			}
			if r.Status != "" {
				if st, err := ParseStatus(string(r.Status)); err != nil || st != r.Status {
					t.Errorf("recipient %q: status %q is not a canonical code", r.Address, r.Status)
				}
			}
		}
	})
}
