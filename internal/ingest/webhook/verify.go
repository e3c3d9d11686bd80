package webhook

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Reasons a request is rejected: the values of the reason label of
// bounced_webhook_rejected_total.
const (
	reasonMissingAuth = "missing_credentials"
	reasonBadAuth     = "bad_signature"
	reasonExpired     = "expired"
	reasonReplayed    = "replayed"
	reasonMalformed   = "malformed"
	reasonTooLarge    = "too_large"
	reasonCertificate = "certificate"
	reasonTopic       = "topic"
)

// RejectError is a request refused before anything was stored.
// Unauthenticated reports whether it failed authentication (HTTP 401)
// rather than being too malformed to authenticate at all (HTTP 400).
// Detail is safe to show the sender: it never holds a secret.
type RejectError struct {
	Provider string
	Reason   string
	Detail   string
	auth     bool
}

func (e *RejectError) Error() string { return "webhook: " + e.Provider + ": " + e.Detail }

// Unauthenticated reports whether the request failed authentication.
func (e *RejectError) Unauthenticated() bool { return e.auth }

func unauthenticated(provider, reason, format string, args ...any) error {
	return &RejectError{Provider: provider, Reason: reason, Detail: fmt.Sprintf(format, args...), auth: true}
}

func malformed(provider, format string, args ...any) error {
	return &RejectError{Provider: provider, Reason: reasonMalformed, Detail: fmt.Sprintf(format, args...)}
}

// checkWindow rejects a signed timestamp too far from now, which is what
// makes a captured request useless to replay later.
func checkWindow(provider string, now, ts time.Time, window time.Duration) error {
	if d := now.Sub(ts); d > window || d < -window {
		return unauthenticated(provider, reasonExpired, "the signed timestamp %s is more than %v from now", ts.UTC().Format(time.RFC3339), window)
	}
	return nil
}

// parseUnix reads a decimal Unix time in seconds, with or without a
// fraction.
func parseUnix(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	secs, frac, _ := strings.Cut(s, ".")
	if secs == "" || len(secs) > 12 || !allDigits(secs) || (frac != "" && !allDigits(frac)) {
		return time.Time{}, false
	}
	var n int64
	for _, c := range secs {
		n = n*10 + int64(c-'0')
	}
	var nanos int64
	for i, scale := 0, int64(100_000_000); i < len(frac) && scale > 0; i, scale = i+1, scale/10 {
		nanos += int64(frac[i]-'0') * scale
	}
	return time.Unix(n, nanos), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// credentials checks HTTP Basic authentication (RFC 7617) or a bearer
// token, in Authorization or a provider's own header; any configured
// account may match.
type credentials struct {
	provider     string
	users        []string // user:password
	tokens       []string
	tokenHeaders []string
}

func newCredentials(provider string, users, tokens []string, tokenHeaders ...string) *credentials {
	return &credentials{provider: provider, users: users, tokens: tokens, tokenHeaders: tokenHeaders}
}

func (c *credentials) check(h http.Header) error {
	auth := h.Get("Authorization")
	var presented string
	switch {
	case len(auth) > 6 && strings.EqualFold(auth[:6], "basic "):
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[6:]))
		if err != nil {
			return unauthenticated(c.provider, reasonBadAuth, "the Basic credentials are not base64")
		}
		if anyEqual(c.users, string(raw)) {
			return nil
		}
		return unauthenticated(c.provider, reasonBadAuth, "unknown user or wrong password")
	case len(auth) > 7 && strings.EqualFold(auth[:7], "bearer "):
		presented = strings.TrimSpace(auth[7:])
	default:
		for _, name := range c.tokenHeaders {
			if v := h.Get(name); v != "" {
				presented = v
				break
			}
		}
	}
	if presented == "" {
		return unauthenticated(c.provider, reasonMissingAuth, "no credentials: use HTTP Basic authentication or a token")
	}
	if anyEqual(c.tokens, presented) {
		return nil
	}
	return unauthenticated(c.provider, reasonBadAuth, "unknown token")
}

// anyEqual compares in constant time against every candidate.
func anyEqual(candidates []string, got string) bool {
	ok := 0
	for _, want := range candidates {
		ok |= subtle.ConstantTimeCompare([]byte(want), []byte(got))
	}
	return ok == 1
}

// parsePublicKey reads a public key given as PEM or as base64 DER (PKIX,
// or PKCS #1 for RSA), the forms providers show them in.
func parsePublicKey(s string) (crypto.PublicKey, error) {
	s = strings.TrimSpace(s)
	var der []byte
	if block, _ := pem.Decode([]byte(s)); block != nil {
		der = block.Bytes
	} else {
		var err error
		// QUIRK(postal): Postal publishes its key as the p= value of a
		// DNS TXT record; accept that form too.
		s = strings.TrimPrefix(s, "p=")
		if der, err = base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), "")); err != nil {
			return nil, errors.New("not PEM and not base64 DER")
		}
	}
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil {
		return k, nil
	}
	return nil, errors.New("not a public key (PKIX or PKCS #1 DER)")
}

func parseECDSAKeys(list []string) ([]*ecdsa.PublicKey, error) {
	var out []*ecdsa.PublicKey
	for i, s := range list {
		k, err := parsePublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		ek, ok := k.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("key %d: not an ECDSA key", i+1)
		}
		out = append(out, ek)
	}
	return out, nil
}

func parseRSAKeys(list []string) ([]*rsa.PublicKey, error) {
	var out []*rsa.PublicKey
	for i, s := range list {
		k, err := parsePublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("key %d: not an RSA key", i+1)
		}
		out = append(out, rk)
	}
	return out, nil
}
