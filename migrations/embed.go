// Package migrations holds bounced's SQL schema changes, applied in order by
// goose at start-up and by `bounced migrate`.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
