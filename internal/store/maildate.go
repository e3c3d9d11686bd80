package store

import (
	"net/mail"
	"strings"
	"time"
)

// parseMailDate reads an RFC 5322 date, tolerating the trailing comments
// ("(JST)") real MTAs write.
func parseMailDate(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '('); i > 0 {
		s = strings.TrimSpace(s[:i])
	}
	return mail.ParseDate(s)
}
