package api

import (
	"io"
	"strings"
	"testing"
)

// FuzzCSVCell: an exported cell never starts a formula, and importing it
// gives back exactly what was exported.
func FuzzCSVCell(f *testing.F) {
	for _, s := range []string{"", "=1+1", "'=x", "''+y", "'plain", "plain", "\tz", "\r", "@a@b", "-", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cell := csvCell(s)
		if cell != "" && strings.IndexByte("=+-@\t\r", cell[0]) >= 0 {
			t.Errorf("csvCell(%q) = %q starts a formula", s, cell)
		}
		if got := csvValue(cell); got != s {
			t.Errorf("csvValue(csvCell(%q)) = %q", s, got)
		}
	})
}

// FuzzCSVLimiter: the limiter's fast path over quote-free stretches ends
// in the state the byte-by-byte rules reach, and lets through what they
// let through.
func FuzzCSVLimiter(f *testing.F) {
	for _, s := range []string{"email\na@b.c\n", "a,\"b\nc\",d\n", "\"x\"\"y\",z\r\n", "a\"b,c\n\"", strings.Repeat("x", 70000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fast := newCSVLimiter(strings.NewReader(s))
		_, ferr := io.ReadAll(fast)
		slow := newCSVLimiter(strings.NewReader(""))
		var serr error
		for i := 0; i < len(s) && serr == nil; i++ {
			serr = slow.step(s[i])
		}
		if (ferr == nil) != (serr == nil) {
			t.Fatalf("fast path error %v, byte by byte %v", ferr, serr)
		}
		if ferr == nil && (fast.line != slow.line || fast.record != slow.record || fast.lineNo != slow.lineNo ||
			fast.inQuotes != slow.inQuotes || fast.quoteSeen != slow.quoteSeen || fast.fieldStart != slow.fieldStart) {
			t.Fatalf("fast path state %+v, byte by byte %+v", *fast, *slow)
		}
	})
}
