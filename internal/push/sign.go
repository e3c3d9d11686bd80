package push

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// Secret sizes: at least 24 bytes and at most 64, as the specification
// asks; NewSecret makes 32.
const (
	SecretMinBytes = 24
	SecretMaxBytes = 64
	secretBytes    = 32
)

// ErrBadSecret means a signing secret is not whsec_ and the base64 of 24
// to 64 bytes.
var ErrBadSecret = errors.New("push: a secret is whsec_ followed by the base64 of 24 to 64 random bytes")

// NewSecret returns a fresh random signing secret.
func NewSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// SecretKey returns the HMAC key of a secret; ErrBadSecret when it is not
// one.
func SecretKey(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		// Some tools drop the padding.
		if key, err = base64.RawStdEncoding.DecodeString(rest); err != nil {
			return nil, ErrBadSecret
		}
	}
	if len(key) < SecretMinBytes || len(key) > SecretMaxBytes {
		return nil, ErrBadSecret
	}
	return key, nil
}

// Signature is the webhook-signature value of a message: "v1," and the
// base64 HMAC-SHA256, under key, of id, timestamp (Unix seconds) and body
// joined by full stops.
func Signature(key []byte, id string, at time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(at.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Sign sets the Standard Webhooks headers of a message sent at at.
func Sign(h http.Header, key []byte, id string, at time.Time, body []byte) {
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(at.Unix(), 10))
	h.Set(HeaderSignature, Signature(key, id, at, body))
}

// VerifyError says why a signed message was refused.
type VerifyError struct{ Reason string }

func (e *VerifyError) Error() string { return "push: " + e.Reason }

// Verify checks a message received with headers h and body against
// secret, as a receiver does: the three headers present, the timestamp
// within tolerance of now, and one of the v1 signatures matching (compared
// in constant time). It returns a *VerifyError, or ErrBadSecret.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := SecretKey(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return &VerifyError{Reason: "the webhook-id, webhook-timestamp and webhook-signature headers are required"}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return &VerifyError{Reason: "webhook-timestamp is not Unix seconds"}
	}
	at := time.Unix(sec, 0)
	if d := now.Sub(at); d > tolerance || d < -tolerance {
		return &VerifyError{Reason: fmt.Sprintf("webhook-timestamp is %v away from now, more than %v", d.Round(time.Second), tolerance)}
	}
	want := Signature(key, id, at, body)
	for _, sig := range strings.Fields(sigs) {
		if strings.HasPrefix(sig, "v1,") && hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return &VerifyError{Reason: "no v1 signature matches the secret"}
}
