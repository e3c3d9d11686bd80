package api

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// Spreadsheets run a cell that starts with = + - or @ (or a tab or
// carriage return before one) as a formula: CSV injection. Text from
// bounces, notes and even addresses ("+1+1@example.com") reaches exports,
// so every exported cell that could start a formula gets a leading
// apostrophe, which spreadsheets show as text (OWASP's advice). So that
// an exported file imports back unchanged, a cell that starts with
// apostrophes before such a character gets one more, and the importer
// removes exactly one: export and import are inverses.

// formulaStart reports whether s starts, after any apostrophes, with a
// character that makes a spreadsheet read it as a formula.
func formulaStart(s string) bool {
	s = strings.TrimLeft(s, "'")
	return s != "" && strings.IndexByte("=+-@\t\r", s[0]) >= 0
}

// csvCell is s as an exported cell: neutralised when it could be run.
func csvCell(s string) string {
	if formulaStart(s) {
		return "'" + s
	}
	return s
}

// csvValue undoes csvCell for an imported cell.
func csvValue(s string) string {
	if strings.HasPrefix(s, "'") && formulaStart(s[1:]) {
		return s[1:]
	}
	return s
}

// Import limits: a record of an export is a few kilobytes at most (its
// longest fields are a 4000-byte diagnostic and a 1000-character note).
const (
	csvMaxLine   = 64 << 10 // bytes in one line of the file
	csvMaxRecord = 64 << 10 // bytes in one record, quoted line breaks included
	quoteMax     = 64       // bytes of a bad value quoted back in an error
)

// csvLimiter passes a CSV file through unchanged and fails it with a
// *BadRequestError as soon as a line or a record (lines joined by quoted
// line breaks) is longer than its limit, so encoding/csv never holds more
// than that in memory however the file is made. It follows the quoting of
// encoding/csv with LazyQuotes: a quote opens a quoted field only at the
// start of a field, and closes it only before a comma or a line end.
type csvLimiter struct {
	r          io.Reader
	line       int // bytes of the current line
	record     int // bytes of the current record
	lineNo     int
	inQuotes   bool
	quoteSeen  bool // inside quotes, the previous byte was a quote
	fieldStart bool
}

func newCSVLimiter(r io.Reader) *csvLimiter {
	return &csvLimiter{r: r, lineNo: 1, fieldStart: true}
}

func (l *csvLimiter) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	b := p[:n]
	for i := 0; i < len(b); {
		if !l.inQuotes {
			// Fast path: a stretch without quotes, up to a line end or a
			// quote, only adds to the lengths.
			seg := b[i:]
			if nl := bytes.IndexByte(seg, '\n'); nl >= 0 {
				seg = seg[:nl]
			}
			if q := bytes.IndexByte(seg, '"'); q >= 0 {
				seg = seg[:q]
			}
			if len(seg) > 0 {
				l.line += len(seg)
				l.record += len(seg)
				if lerr := l.check(); lerr != nil {
					return i, lerr
				}
				l.fieldStart = seg[len(seg)-1] == ','
				i += len(seg)
				continue
			}
		}
		if l.inQuotes && !l.quoteSeen {
			// Fast path: the inside of a quoted field, up to its next
			// quote, only adds to the lengths (its line ends included).
			seg := b[i:]
			if q := bytes.IndexByte(seg, '"'); q >= 0 {
				seg = seg[:q]
			}
			if len(seg) > 0 {
				for rest := seg; ; {
					nl := bytes.IndexByte(rest, '\n')
					if nl < 0 {
						l.line += len(rest)
						break
					}
					l.line += nl + 1
					if lerr := l.check(); lerr != nil {
						return i, lerr
					}
					l.line = 0
					l.lineNo++
					rest = rest[nl+1:]
				}
				l.record += len(seg)
				if lerr := l.check(); lerr != nil {
					return i, lerr
				}
				i += len(seg)
				continue
			}
		}
		if lerr := l.step(b[i]); lerr != nil {
			return i, lerr
		}
		i++
	}
	return n, err
}

func (l *csvLimiter) check() error {
	if l.line > csvMaxLine {
		return badRequest("body", "line %d is longer than %d bytes", l.lineNo, csvMaxLine)
	}
	if l.record > csvMaxRecord {
		return badRequest("body", "the record ending on line %d is longer than %d bytes (an unclosed quote?)", l.lineNo, csvMaxRecord)
	}
	return nil
}

func (l *csvLimiter) step(c byte) error {
	l.line++
	l.record++
	if err := l.check(); err != nil {
		return err
	}
	if c == '\n' {
		l.line = 0
		l.lineNo++
	}
	if l.inQuotes {
		switch {
		case l.quoteSeen && c == '"': // an escaped quote
			l.quoteSeen = false
			return nil
		case l.quoteSeen && (c == ',' || c == '\n' || c == '\r'):
			l.inQuotes, l.quoteSeen = false, false // the field ends; c is read below
		case l.quoteSeen: // a lazy quote inside the field
			l.quoteSeen = false
			return nil
		case c == '"':
			l.quoteSeen = true
			return nil
		default:
			return nil
		}
	}
	if c == '"' && l.fieldStart {
		l.inQuotes, l.fieldStart = true, false
		return nil
	}
	l.fieldStart = c == ',' || c == '\n'
	if c == '\n' {
		l.record = 0
	}
	return nil
}

// quoteValue quotes a value for an error message, cut to quoteMax bytes:
// errors must not echo megabytes back.
func quoteValue(s string) string {
	if len(s) <= quoteMax {
		return fmt.Sprintf("%q", s)
	}
	cut := quoteMax
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:cut], len(s))
}
