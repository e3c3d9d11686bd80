package parse

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// ErrBadAddress is returned by NormalizeAddress for text that holds no
// usable mail address.
var ErrBadAddress = errors.New("parse: not a mail address")

// maxAddressLen is RFC 5321's limit on a forward path, with room for the
// longer IDNA form of a Unicode domain.
const maxAddressLen = 512

// idnaProfile is lenient on purpose: bounce reports carry whatever the
// sender typed, and an address we cannot convert is still worth keying.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// NormalizeAddress returns the canonical form of a mail address, the one
// every table and API of bounced stores: surrounding space, an "rfc822;"
// address-type prefix, a display name, angle brackets and quotes removed;
// the domain converted to IDNA ASCII (which maps its case) or, when it
// cannot be, lower-cased in ASCII only. The local part keeps its case
// (RFC 5321 says it may matter); compare with AddressKey.
func NormalizeAddress(s string) (string, error) {
	// Peel wrappings until none is left, so the result is a fixed point:
	// reports nest them in any order ("<rfc822;user@…>", "rfc822;<…>").
	for {
		peeled := peelAddress(s)
		if peeled == s {
			break
		}
		s = peeled
	}
	if len(s) > maxAddressLen || !utf8.ValidString(s) {
		return "", ErrBadAddress
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", ErrBadAddress
	}
	local, domain := s[:at], strings.TrimSuffix(s[at+1:], ".")
	quoted := len(local) >= 2 && local[0] == '"' && local[len(local)-1] == '"'
	if domain == "" || hasControl(local) || hasControl(domain) ||
		!quoted && strings.ContainsAny(local, " \"<>") ||
		strings.ContainsAny(domain, " @<>()\\,;:\"") {
		return "", ErrBadAddress
	}
	domain = asciiLower(domain)
	if !isASCII(domain) {
		if strings.IndexFunc(domain, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return "", ErrBadAddress
		}
		if ascii, err := idnaProfile.ToASCII(domain); err == nil {
			// IDNA mapping can turn odd code points into ASCII a domain
			// may not hold; such an address is no address.
			if ascii == "" || strings.ContainsAny(ascii, " @<>()\\,;:\"") || hasControl(ascii) {
				return "", ErrBadAddress
			}
			// Check the ASCII form as if it had been given: mapping can
			// leave a domain that is empty or ends in a dot.
			return NormalizeAddress(local + "@" + ascii)
		}
	}
	if len(local)+1+len(domain) > maxAddressLen {
		return "", ErrBadAddress // the ASCII form of a domain is longer
	}
	return local + "@" + domain, nil
}

// peelAddress removes one layer of what surrounds an address in reports:
// space, an "rfc822;" type, a display name and angle brackets, quotes
// around the whole, trailing punctuation.
func peelAddress(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 6 && strings.EqualFold(s[:6], "rfc822") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(s[6:]), ";"); ok {
			return strings.TrimSpace(rest)
		}
	}
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return strings.TrimSpace(s[i+1 : i+j])
		}
	}
	// An unbalanced bracket left by a mangled report: "user@example.com>".
	if strings.HasSuffix(s, ">") && !strings.Contains(s, "<") {
		return strings.TrimSpace(strings.TrimRight(s, ">"))
	}
	if strings.HasPrefix(s, "<") && !strings.Contains(s, ">") {
		return strings.TrimSpace(strings.TrimLeft(s, "<"))
	}
	if len(s) >= 2 && (s[0] == '\'' && s[len(s)-1] == '\'' || s[0] == '"' && s[len(s)-1] == '"' && strings.Count(s, `"`) == 2) {
		return strings.TrimSpace(s[1 : len(s)-1]) // 'user@example.com' or "user@example.com"
	}
	return strings.TrimRight(s, ".,;:")
}

// AddressKey is the form addresses are compared in: the normalised address
// with ASCII letters lower-cased, as every large mailbox provider treats
// local parts. Other letters keep their case: Unicode case mapping would
// make different mailboxes one ("\u212Aate", with a Kelvin sign, is not
// "kate"), and the domain was already mapped by IDNA.
func AddressKey(normalized string) string { return asciiLower(normalized) }

// asciiLower lower-cases A to Z only.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// AddressDomain returns the domain of a normalised address.
func AddressDomain(normalized string) string {
	return normalized[strings.LastIndexByte(normalized, '@')+1:]
}

func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
