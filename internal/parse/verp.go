package parse

import "strings"

// VERP describes variable envelope return paths (VERP): the sender encodes
// each recipient in the bounce address, so a bounce names its recipient
// even when the report itself does not:
//
//	bounces+user=example.com@bounce.example.net
//	bounces+user=example.com+c42@bounce.example.net   (with a token)
//
// The token, when present, maps back to a campaign or message id.
type VERP struct {
	Prefix    string // "bounces"
	Separator byte   // '+' (default) or '-'
}

// Decode returns the original recipient (normalised) and token encoded in
// addr, or ok false when addr is not a VERP address of this shape. Tokens
// need a separator that cannot appear in a domain name, so with '-' none
// is recognised.
func (v VERP) Decode(addr string) (recipient, token string, ok bool) {
	sep := v.Separator
	if sep == 0 {
		sep = '+'
	}
	norm, err := NormalizeAddress(addr)
	if err != nil {
		return "", "", false
	}
	local := norm[:strings.LastIndexByte(norm, '@')]
	if len(local) <= len(v.Prefix)+1 || !strings.EqualFold(local[:len(v.Prefix)], v.Prefix) || local[len(v.Prefix)] != sep {
		return "", "", false
	}
	rest := local[len(v.Prefix)+1:]
	eq := strings.LastIndexByte(rest, '=')
	if eq <= 0 || eq == len(rest)-1 {
		return "", "", false
	}
	user, domain := rest[:eq], rest[eq+1:]
	if sep != '-' {
		if i := strings.IndexByte(domain, sep); i >= 0 {
			domain, token = domain[:i], domain[i+1:]
		}
	}
	recipient, err = NormalizeAddress(user + "@" + domain)
	if err != nil || !strings.Contains(domain, ".") {
		return "", "", false
	}
	return recipient, token, true
}
