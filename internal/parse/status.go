package parse

import (
	"errors"
	"strconv"
	"strings"
)

// Status is an RFC 3463 enhanced status code such as "5.1.1", or "" when
// none is known.
type Status string

// ErrBadStatus is returned by ParseStatus for text that is not a status code.
var ErrBadStatus = errors.New("parse: not an enhanced status code")

// ParseStatus reads an enhanced status code. It accepts the dotted form
// ("5.1.1", "5.7.26"), the undotted three-digit form some servers print
// ("511"), and a surrounding "#" or parentheses ("#5.1.1", "(5.1.1)").
func ParseStatus(s string) (Status, error) {
	s = strings.Trim(strings.TrimSpace(s), "#()[]<>.,;:")
	class, subject, detail, ok := splitStatus(s)
	if !ok {
		return "", ErrBadStatus
	}
	return Status(strconv.Itoa(class) + "." + strconv.Itoa(subject) + "." + strconv.Itoa(detail)), nil
}

func splitStatus(s string) (class, subject, detail int, ok bool) {
	if len(s) == 3 && isDigits(s) {
		return int(s[0] - '0'), int(s[1] - '0'), int(s[2] - '0'), validClass(int(s[0] - '0'))
	}
	first, rest, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, 0, false
	}
	second, third, found := strings.Cut(rest, ".")
	if !found || len(first) != 1 || !isDigits(first) || !isDigits(second) || !isDigits(third) ||
		len(second) > 3 || len(third) > 3 {
		return 0, 0, 0, false
	}
	class = int(first[0] - '0')
	subject, _ = strconv.Atoi(second)
	detail, _ = strconv.Atoi(third)
	return class, subject, detail, validClass(class)
}

func validClass(c int) bool { return c == 2 || c == 4 || c == 5 }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Class returns the first digit: 2 success, 4 transient, 5 permanent, or 0.
func (s Status) Class() int {
	if s == "" {
		return 0
	}
	return int(s[0] - '0')
}

// Permanent reports a 5.x.x code.
func (s Status) Permanent() bool { return s.Class() == 5 }

// Transient reports a 4.x.x code.
func (s Status) Transient() bool { return s.Class() == 4 }

// Generic reports a code with no detail of its own, X.0.0.
func (s Status) Generic() bool { return len(s) == 5 && s[1:] == ".0.0" }

// SubjectDetail returns the code without its class, such as "1.1".
func (s Status) SubjectDetail() string {
	if len(s) < 5 {
		return ""
	}
	return string(s[2:])
}

// FindStatus returns the first enhanced status code in text, or "".
// It looks only for the dotted form, since bare digits in free text are
// usually something else.
func FindStatus(text string) Status {
	st, _ := findStatusAt(text)
	return st
}

// findStatusAt is FindStatus that also returns where the code ends.
func findStatusAt(text string) (Status, int) {
	for i := 0; i+5 <= len(text); i++ {
		c := text[i]
		if (c != '2' && c != '4' && c != '5') || text[i+1] != '.' {
			continue
		}
		if i > 0 && (isDigit(text[i-1]) || text[i-1] == '.') {
			continue
		}
		j := i + 2
		k := j
		for k < len(text) && k-j < 3 && isDigit(text[k]) {
			k++
		}
		if k == j || k >= len(text) || text[k] != '.' {
			continue
		}
		m := k + 1
		n := m
		for n < len(text) && n-m < 3 && isDigit(text[n]) {
			n++
		}
		if n == m || (n < len(text) && (isDigit(text[n]) || (text[n] == '.' && n+1 < len(text) && isDigit(text[n+1])))) {
			continue
		}
		if st, err := ParseStatus(text[i:n]); err == nil {
			return st, n
		}
	}
	return "", len(text)
}

// FindReplyCode returns the first SMTP reply code (a three-digit number
// starting 2, 4 or 5 that stands alone) in text, or "".
func FindReplyCode(text string) string {
	for i := 0; i+3 <= len(text); i++ {
		c := text[i]
		if c != '2' && c != '4' && c != '5' {
			continue
		}
		// Inside a word or a number it is no code: a host name, a queue
		// id, an IPv6 address ("[2a00:1450:400c:c05::1a]").
		if i > 0 && (isDigit(text[i-1]) || isLetter(text[i-1]) || text[i-1] == '.' || text[i-1] == '-' && i > 1 && isDigit(text[i-2])) {
			continue
		}
		if !isDigit(text[i+1]) || !isDigit(text[i+2]) {
			continue
		}
		if i+3 < len(text) {
			next := text[i+3]
			if isDigit(next) || isLetter(next) || next == '.' && i+4 < len(text) && isDigit(text[i+4]) || next == ':' || next == '/' {
				continue
			}
		}
		return text[i : i+3]
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }
