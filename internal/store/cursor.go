package store

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrBadCursor means a pagination cursor was not one this server issued.
var ErrBadCursor = errors.New("store: invalid cursor")

// Page sizes.
const (
	LimitDefault = 100
	LimitMax     = 1000
)

func clampLimit(n int) int {
	if n <= 0 {
		return LimitDefault
	}
	return min(n, LimitMax)
}

// Cursors are opaque to clients: base64 of the sort key of the last row.

func encodeTimeCursor(t time.Time, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + "." + strconv.FormatInt(id, 10)))
}

func decodeTimeCursor(c string) (time.Time, int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, 0, ErrBadCursor
	}
	us, ids, ok := strings.Cut(string(b), ".")
	if !ok {
		return time.Time{}, 0, ErrBadCursor
	}
	u, err1 := strconv.ParseInt(us, 10, 64)
	id, err2 := strconv.ParseInt(ids, 10, 64)
	if err1 != nil || err2 != nil {
		return time.Time{}, 0, ErrBadCursor
	}
	return time.UnixMicro(u), id, nil
}

// sortCursor is the position after the last row of a sorted page.
type sortCursor struct {
	key string
	id  int64
}

// Sorted cursors name their order, so a cursor is never read in another.
func encodeSortCursor(order, key string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(order + "\x00" + key + "\x00" + strconv.FormatInt(id, 10)))
}

func decodeSortCursor(c, order string) (sortCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return sortCursor{}, ErrBadCursor
	}
	parts := strings.Split(string(b), "\x00")
	// The key is compared with a text column: it must be text.
	if len(parts) != 3 || parts[0] != order || !utf8.ValidString(parts[1]) {
		return sortCursor{}, ErrBadCursor
	}
	id, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil || id < 0 {
		return sortCursor{}, ErrBadCursor
	}
	return sortCursor{key: parts[1], id: id}, nil
}
