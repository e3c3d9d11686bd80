// Package ingest turns raw inputs (bounce mail posted over HTTP, and in
// later stages webhooks and mailboxes) into stored events: it parses,
// derives events and hands both to the store in one call, so the raw
// bytes and everything read from them commit together.
package ingest
