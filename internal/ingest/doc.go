// Package ingest turns raw inputs into stored events: it parses, derives
// events and hands both to the store in one call, so the raw bytes and
// everything read from them commit together.
//
// Mail comes in by HTTP (Mail.Ingest) and from mailboxes:
//
//   - IMAP (RFC 9051, RFC 3501) with IDLE (RFC 2177), MOVE (RFC 6851) and
//     UIDPLUS (RFC 4315) when the server has them: a UID checkpoint per
//     folder, and a lease so one replica reads each mailbox;
//   - Maildir (new/ to cur/, with the info flags of the Maildir spec) and,
//     for backfills, mbox files (mboxrd, reading mboxo);
//   - an SMTP (RFC 5321) or LMTP (RFC 2033) receiver with STARTTLS
//     (RFC 3207) for the bounce domain.
//
// Every mailbox commits a message before it moves, flags, deletes or
// acknowledges it; a crash in between means a second read, which the
// store's raw sha256 dedupe turns into a no-op. VERP bounce addresses
// (see parse.VERP) name the original recipient when a report does not.
package ingest
