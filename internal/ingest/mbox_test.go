package ingest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readAllMbox(t testing.TB, in string, limit int64) ([]string, int, error) {
	t.Helper()
	r := newMboxReader(strings.NewReader(in), limit)
	var msgs []string
	tooLarge := 0
	for i := 0; i < len(in)+2; i++ {
		raw, err := r.Next()
		switch {
		case err == io.EOF:
			return msgs, tooLarge, nil
		case errors.Is(err, errTooLarge):
			tooLarge++
		case err != nil:
			return msgs, tooLarge, err
		default:
			msgs = append(msgs, string(raw))
		}
	}
	t.Fatalf("mbox reader did not stop on %q", in)
	return nil, 0, nil
}

func TestMboxReader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		in       string
		limit    int64
		want     []string
		tooLarge int
		err      error
	}{
		{name: "two messages", in: "From a@x Mon Jan  1 00:00:00 2024\nSubject: 1\n\nbody\n\nFrom b@x Mon Jan  1 00:00:00 2024\nSubject: 2\n\nbody2\n\n",
			want: []string{"Subject: 1\n\nbody\n", "Subject: 2\n\nbody2\n"}},
		{name: "no trailing blank line", in: "From a\nS: 1\n\nx\n", want: []string{"S: 1\n\nx\n"}},
		{name: "unterminated last line", in: "From a\nS: 1\n\nx", want: []string{"S: 1\n\nx"}},
		{name: "quoted From lines are unquoted", in: "From a\nS: 1\n\n>From here\n>>From there\n>Fromage\n\n",
			want: []string{"S: 1\n\nFrom here\n>From there\n>Fromage\n"}},
		{name: "From inside a paragraph does not split", in: "From a\nS: 1\n\nline\nFrom the start\n\n",
			want: []string{"S: 1\n\nline\nFrom the start\n"}},
		{name: "CRLF", in: "From a\r\nS: 1\r\n\r\nx\r\n\r\nFrom b\r\nS: 2\r\n\r\ny\r\n",
			want: []string{"S: 1\r\n\r\nx\r\n", "S: 2\r\n\r\ny\r\n"}},
		{name: "leading blank lines", in: "\n\nFrom a\nS: 1\n\nx\n", want: []string{"S: 1\n\nx\n"}},
		{name: "too large is skipped", in: "From a\nS: 1\n\n" + strings.Repeat("x", 100) + "\n\nFrom b\nS: 2\n\ny\n", limit: 50,
			want: []string{"S: 2\n\ny\n"}, tooLarge: 1},
		{name: "not an mbox", in: "Subject: hello\n\nbody\n", err: ErrNotMbox},
		{name: "empty file", in: "", err: ErrNotMbox},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			limit := tc.limit
			if limit == 0 {
				limit = 1 << 20
			}
			got, tooLarge, err := readAllMbox(t, tc.in, limit)
			if !errors.Is(err, tc.err) {
				t.Fatalf("read(%q) error = %v, want %v", tc.in, err, tc.err)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("read(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if tooLarge != tc.tooLarge {
				t.Errorf("read(%q) skipped %d too large, want %d", tc.in, tooLarge, tc.tooLarge)
			}
		})
	}
}

// writeMboxrd writes messages the way mboxrd writers do.
func writeMboxrd(msgs [][]byte) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.WriteString("From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n")
		for line := range bytes.Lines(m) {
			if bytes.HasPrefix(bytes.TrimLeft(line, ">"), []byte("From ")) {
				b.WriteByte('>')
			}
			b.Write(line)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func mboxSeeds(f *testing.F) {
	f.Add([]byte("Subject: a\n\nFrom me\n\x00Subject: b\n\n>From you\n"))
	f.Add([]byte("From \n\nFrom \n\n"))
	f.Add([]byte("\r\n\r\nFrom x\r\n\x00\x00\n"))
	files, _ := filepath.Glob("../parse/testdata/sisimai/eml/*.eml")
	for i := 0; i < len(files); i += 60 {
		if raw, err := os.ReadFile(files[i]); err == nil {
			f.Add(raw)
		}
	}
}

// FuzzMboxRoundTrip: messages written as mboxrd read back unchanged.
func FuzzMboxRoundTrip(f *testing.F) {
	mboxSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var msgs [][]byte
		for m := range bytes.SplitSeq(data, []byte{0}) {
			if len(m) == 0 || m[len(m)-1] != '\n' {
				m = append(m, '\n') // writers end every message with a line end
			}
			msgs = append(msgs, m)
		}
		r := newMboxReader(bytes.NewReader(writeMboxrd(msgs)), 1<<30)
		for i, want := range msgs {
			got, err := r.Next()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("message %d = %q, want %q", i, got, want)
			}
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("after the last message: %v, want EOF", err)
		}
	})
}

// FuzzMboxReader: any input ends in EOF or an error, never a panic, and
// no message is longer than the input or the limit.
func FuzzMboxReader(f *testing.F) {
	mboxSeeds(f)
	f.Add([]byte("From a\nx\n\nFrom b\n\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 256
		r := newMboxReader(bytes.NewReader(data), limit)
		total := 0
		for i := 0; i <= len(data)+1; i++ {
			raw, err := r.Next()
			if err == io.EOF || errors.Is(err, ErrNotMbox) {
				if total > len(data) {
					t.Fatalf("read %d bytes of messages from %d of input", total, len(data))
				}
				if r.Consumed() > int64(len(data)) {
					t.Fatalf("consumed %d of %d bytes", r.Consumed(), len(data))
				}
				return
			}
			if errors.Is(err, errTooLarge) {
				continue
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if len(raw) > limit {
				t.Fatalf("message of %d bytes over the limit %d", len(raw), limit)
			}
			total += len(raw)
		}
		t.Fatalf("reader did not reach EOF on %d bytes", len(data))
	})
}

func TestWithSeenFlag(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"1700000000.M1P2.host":        "1700000000.M1P2.host:2,S",
		"1700000000.M1P2.host:2,":     "1700000000.M1P2.host:2,S",
		"1700000000.M1P2.host:2,FT":   "1700000000.M1P2.host:2,FST",
		"1700000000.M1P2.host:2,RS":   "1700000000.M1P2.host:2,RS",
		"1700000000.M1P2.host,S=1234": "1700000000.M1P2.host,S=1234:2,S",
	}
	for in, want := range cases {
		if got := withSeenFlag(in); got != want {
			t.Errorf("withSeenFlag(%q) = %q, want %q", in, got, want)
		}
	}
}

func BenchmarkMboxReader(b *testing.B) {
	files, _ := filepath.Glob("../parse/testdata/sisimai/eml/*.eml")
	var msgs [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, raw)
	}
	mbox := writeMboxrd(msgs)
	b.SetBytes(int64(len(mbox)))
	b.ReportAllocs()
	for b.Loop() {
		r := newMboxReader(bytes.NewReader(mbox), 1<<30)
		n := 0
		for {
			if _, err := r.Next(); err != nil {
				if err != io.EOF {
					b.Fatal(err)
				}
				break
			}
			n++
		}
		if n != len(msgs) {
			b.Fatalf("read %d messages, want %d", n, len(msgs))
		}
	}
}
