package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/parse"
)

type outLine struct {
	File       string `json:"file"`
	Kind       string `json:"kind"`
	Error      string `json:"error"`
	Recipients []struct {
		Address, Status, Reason, Class string
		Suppress                       bool
	} `json:"recipients"`
	Events []struct {
		Recipient, Type, Class, Reason string
		OccurredAt                     *time.Time `json:"occurred_at"`
	} `json:"events"`
	VERP *struct {
		Recipient, Field string
		Used             bool
	} `json:"verp"`
}

func parseOutput(t *testing.T, out string) []outLine {
	t.Helper()
	var lines []outLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v outLine
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		lines = append(lines, v)
	}
	return lines
}

// TestParseDirInOrder parses a directory of many files, good and bad, on
// several workers: one line per file, in lexical order, the same output
// as one worker gives, and bad files reported without stopping the run.
func TestParseDirInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var names []string
	for i := range 120 {
		name := fmt.Sprintf("m%03d.eml", i)
		var raw []byte
		switch i % 6 {
		case 0:
			raw = []byte{} // empty: an error line
		case 1:
			raw = make([]byte, parse.MaxInputSize+10) // too large: an error line
		default:
			raw = dsntest.DSN(name, dsntest.Rcpt{Address: fmt.Sprintf("u%d@example.com", i), Status: "5.1.1"})
		}
		if err := os.WriteFile(filepath.Join(dir, name), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, filepath.Join(dir, name))
	}
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	os.WriteFile(filepath.Join(sub, "deep.eml"), dsntest.DSN("deep", dsntest.Rcpt{Address: "deep@example.com", Status: "5.2.2"}), 0o644)
	names = append(names, filepath.Join(sub, "deep.eml"))
	if err := syscall.Mkfifo(filepath.Join(sub, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	names = append(names, filepath.Join(sub, "pipe"))
	sort.Strings(names)

	outputs := map[string]string{}
	for _, jobs := range []string{"1", "4"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"parse", "--jobs", jobs, dir}, env(), nil, &out, io.Discard); err != nil {
			t.Fatalf("parse --jobs %s: %v", jobs, err)
		}
		outputs[jobs] = out.String()
	}
	if outputs["1"] != outputs["4"] {
		t.Fatalf("parse --jobs 4 output differs from --jobs 1")
	}
	lines := parseOutput(t, outputs["4"])
	if len(lines) != len(names) {
		t.Fatalf("parse printed %d lines, want %d", len(lines), len(names))
	}
	for i, l := range lines {
		if l.File != names[i] {
			t.Fatalf("line %d is %s, want %s (argument order)", i, l.File, names[i])
		}
		base := filepath.Base(l.File)
		switch base {
		case "pipe":
			if !strings.Contains(l.Error, "not a regular file") {
				t.Errorf("%s: error %q, want not a regular file", base, l.Error)
			}
		case "deep.eml":
			if l.Kind != "bounce" || len(l.Recipients) != 1 || l.Recipients[0].Reason != "mailbox_full" {
				t.Errorf("%s = %+v", base, l)
			}
		default:
			var i int
			fmt.Sscanf(base, "m%03d.eml", &i)
			switch i % 6 {
			case 0:
				if !strings.Contains(l.Error, "empty") || l.Kind != "not_bounce" || l.Recipients == nil {
					t.Errorf("%s = %+v, want an empty-message error", base, l)
				}
			case 1:
				if !strings.Contains(l.Error, "too large") {
					t.Errorf("%s = %+v, want a too-large error", base, l)
				}
			default:
				want := fmt.Sprintf("u%d@example.com", i)
				if l.Error != "" || len(l.Recipients) != 1 || l.Recipients[0].Address != want || !l.Recipients[0].Suppress {
					t.Errorf("%s = %+v, want %s suppressed", base, l, want)
				}
			}
		}
	}
}

func TestParseOptionsFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "anon.eml")
	raw := "From: postmaster@mx.example.net\nTo: bounces+user=example.com@bounce.example.org\nSubject: Undeliverable message\n\n" +
		"Your message could not be delivered: 550 5.1.1 Mailbox does not exist.\n"
	os.WriteFile(file, []byte(raw), 0o644)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"parse", "--verp-prefix", "bounces", file}, env(), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := parseOutput(t, out.String())
	if len(lines) != 1 || len(lines[0].Recipients) != 1 || lines[0].Recipients[0].Address != "user@example.com" {
		t.Fatalf("parse --verp-prefix = %+v, want user@example.com", lines)
	}
	// The line says where the recipient came from, and what the service
	// records: a hard bounce, at no time (the report gives none).
	l := lines[0]
	if l.VERP == nil || l.VERP.Recipient != "user@example.com" || l.VERP.Field != "To" || !l.VERP.Used {
		t.Errorf("parse --verp-prefix verp = %+v", l.VERP)
	}
	if len(l.Events) != 1 || l.Events[0].Recipient != "user@example.com" || l.Events[0].Type != "bounce" ||
		l.Events[0].Class != "hard" || l.Events[0].OccurredAt != nil {
		t.Errorf("parse --verp-prefix events = %+v, want one hard bounce without a time", l.Events)
	}
	var ue usageError
	if err := run(context.Background(), []string{"parse", "--jobs", "0", file}, env(), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
		t.Errorf("parse --jobs 0 = %v, want a usage error", err)
	}
	if err := run(context.Background(), []string{"parse"}, env(), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
		t.Errorf("parse without files = %v, want a usage error", err)
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n--; w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestParseOutputFails stops the run with an error when output cannot be
// written, instead of hanging or going on unseen.
func TestParseOutputFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Output is buffered (64 KiB): enough files that it is written more
	// than once, and the second write fails.
	for i := range 200 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.eml", i)), dsntest.DSN("x", dsntest.Rcpt{Address: "a@example.com", Status: "5.1.1"}), 0o644)
	}
	err := run(context.Background(), []string{"parse", "--jobs", "3", dir}, env(), nil, &failingWriter{n: 1}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("parse to a failing writer = %v, want the write error", err)
	}
}

// TestParsedReportEvents checks what the store makes of the parser's
// output: an auto-reply is never a bounce, a "not-spam" report is a
// delivery, an auth-failure report the sender's own failure, and only a
// real complaint suppresses.
func TestParsedReportEvents(t *testing.T) {
	t.Parallel()
	arf := func(feedbackType string) []byte {
		return []byte("From: fbl@isp.example\nTo: fbl@example.org\nSubject: Report\n" +
			"Content-Type: multipart/report; report-type=feedback-report; boundary=F\n\n" +
			"--F\nContent-Type: message/feedback-report\n\nFeedback-Type: " + feedbackType + "\nOriginal-Rcpt-To: reader@isp.example\n\n--F--\n")
	}
	tests := []struct {
		name     string
		raw      []byte
		typ      parse.EventType
		class    parse.Class
		suppress bool
	}{
		{"abuse", arf("abuse"), parse.EventComplaint, parse.ClassComplaint, true},
		{"not-spam", arf("not-spam"), parse.EventDelivery, parse.ClassNone, false},
		{"auth-failure", arf("auth-failure"), parse.EventBounce, parse.ClassSender, false},
		{"auto-reply", []byte("From: jane@example.com\nTo: news@example.org\nSubject: Away\nAuto-Submitted: auto-replied\n\nAway.\n"), parse.EventAutoReply, parse.ClassNone, false},
		{"bounce", dsntest.DSN("e", dsntest.Rcpt{Address: "gone@example.com", Status: "5.1.1"}), parse.EventBounce, parse.ClassHard, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rep, err := parse.Parse(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			evs := parse.Events(rep, time.Now())
			if len(evs) != 1 {
				t.Fatalf("EventsFromReport() = %d events, want 1", len(evs))
			}
			if ev := evs[0]; ev.Type != tt.typ || ev.Class != tt.class || ev.Class.Suppresses() != tt.suppress {
				t.Errorf("EventsFromReport() = %s/%s, want %s/%s (suppress %v)", ev.Type, ev.Class, tt.typ, tt.class, tt.suppress)
			}
		})
	}
}

// BenchmarkParseCommand runs `bounced parse DIR` over the labelled corpus
// with one worker and with one per core; compare their msgs/s.
func BenchmarkParseCommand(b *testing.B) {
	dir := "../../internal/parse/testdata/sisimai/eml"
	files, err := filepath.Glob(filepath.Join(dir, "*.eml"))
	if err != nil || len(files) == 0 {
		b.Fatalf("no corpus: %v", err)
	}
	for _, jobs := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("jobs=%d", jobs), func(b *testing.B) {
			for b.Loop() {
				if err := run(context.Background(), []string{"parse", "--jobs", strconv.Itoa(jobs), dir}, env(), nil, io.Discard, io.Discard); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(files))/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkParseDir runs `bounced parse DIR --jobs 1` over the whole
// parse testdata (the labelled, malformed and unlabelled corpus, the
// MTA corpus, the quirks and their golden files) with the JSON written
// to a discarded buffer: the command's work on one core, but for the
// process start. Run it with -cpu 1 to compare with one core.
func BenchmarkParseDir(b *testing.B) {
	dir := "../../internal/parse/testdata"
	files := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files++
		}
		return err
	})
	if err != nil || files == 0 {
		b.Fatalf("no corpus: %v", err)
	}
	var out bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		out.Reset()
		if err := run(context.Background(), []string{"parse", "--jobs", "1", dir}, env(), nil, &out, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*files)/b.Elapsed().Seconds(), "msgs/s")
}

// TestParseProgress counts the files parsed on standard error, and only
// there: the JSON lines on standard output are the same with it or not.
func TestParseProgress(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 25 {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.eml", i)), dsntest.DSN("p", dsntest.Rcpt{Address: "a@example.com", Status: "5.1.1"}), 0o644)
	}
	var plain, out, bar bytes.Buffer
	if err := run(context.Background(), []string{"parse", dir}, env(), nil, &plain, &bar); err != nil || bar.Len() != 0 {
		t.Fatalf("parse without a terminal = %v, wrote %q to stderr", err, bar.String())
	}
	if err := run(context.Background(), []string{"parse", "--progress", "always", dir}, env(), nil, &out, &bar); err != nil {
		t.Fatal(err)
	}
	if out.String() != plain.String() {
		t.Error("the output differs with --progress always")
	}
	if !strings.Contains(bar.String(), "parsing") || !strings.Contains(bar.String(), "(25/") {
		t.Errorf("stderr with --progress always = %q, want a counter at 25 files", bar.String())
	}
	var ue usageError
	if err := run(context.Background(), []string{"parse", "--progress", "sometimes", dir}, env(), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
		t.Errorf("--progress sometimes = %v, want a usage error", err)
	}
}
