package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/parse"
)

// text is a JSON value providers send as a string or as a number (ids,
// codes, timestamps). Numbers keep their exact digits: Postmark's ID and
// Mailjet's MessageID exceed 2^53, which float64 would round.
type text string

func (t *text) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return errors.New("empty value")
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = text(s)
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*t = text(n)
	case string(b) == "null":
		*t = ""
	default:
		return fmt.Errorf("want a string or a number, got %.20s", b)
	}
	return nil
}

// decodeJSON reads exactly one JSON value (json.Unmarshal refuses data
// after it).
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("payload is not the expected JSON: %w", err)
	}
	return nil
}

// decodeOneOrMany reads a JSON array of T, or a single T, as some
// providers send either depending on an account setting.
func decodeOneOrMany[T any](b []byte) ([]T, error) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var many []T
		err := decodeJSON(b, &many)
		return many, err
	}
	var one T
	if err := decodeJSON(b, &one); err != nil {
		return nil, err
	}
	return []T{one}, nil
}

func unixTime(s text, now time.Time) time.Time {
	t, ok := parseUnix(string(s))
	if !ok {
		return time.Time{}
	}
	return parse.PlausibleTime(t, now)
}

func rfc3339Time(s string, now time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	return parse.PlausibleTime(t, now)
}
