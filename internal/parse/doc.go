// Package parse reads bounce mail and classifies it.
//
// It implements RFC 3464 (delivery status notifications, also when their
// fields come flattened into text), RFC 3463 (enhanced mail system status
// codes, with the later IANA registrations), RFC 5965 and RFC 6591 (abuse
// and authentication failure reports), RFC 3834 (automatic responses) and
// RFC 7505 (null MX), over MIME as RFC 2045-2047 and RFC 6532 define it;
// and the non-standard formats of real mail servers and providers:
// plain-text reports of Exim, qmail, Sendmail, Exchange, Domino and others,
// mobile carriers' notices, and providers' JSON notifications.
//
// Parsing has three steps. A small MIME reader splits the message into
// the parts that matter (charsets are decoded with go-message's tables).
// Readers then find the recipients: the delivery-status fields when
// there are any, else the failed addresses of a plain-text report, where
// each address opens a block of what the remote server said. Last, each
// recipient is classified from its enhanced status code, its SMTP reply
// code and its words, matched against a table of phrases in one linear
// pass; where the words say more than a generic or misused code, they
// win. Dead-mailbox wordings are read as a shape (a noun naming the
// mailbox and a predicate denying it exists, in several languages;
// deadword.go) rather than only as a list of sentences. Every recipient
// carries the Evidence that decided it, and a hard class needs strong
// evidence: a recipient-level permanent code or unambiguous words in a
// permanent reply, with nothing in the reply contradicting them;
// anything less is soft and the evidence says why. Vendor quirks are
// marked QUIRK(vendor) and have a fixture in testdata/quirks.
//
// The package owns the domain types every other package uses: Report,
// Recipient, Kind, Action, Class, Reason, Status, and Event, what bounced
// records. Events are derived here and nowhere else: Events for a report
// (a DSN, a mailed notification, a bounce named by its VERP address),
// and the provider constructors (FailureEvent, DeliveryEvent, ...,
// ReadSES) that the webhook decoders call; the store only persists them
// and applies the suppression policy. It is pure: it does no I/O, reads
// no clock (times of receipt come in as arguments) and touches no
// database, so it can be fuzzed and benchmarked in isolation, and its
// work is linear in the size of its input, which is capped
// (MaxInputSize).
package parse
