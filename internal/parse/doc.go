// Package parse reads bounce mail and classifies it.
//
// It implements RFC 3464 (delivery status notifications), RFC 3463
// (enhanced mail system status codes), RFC 5965 (abuse reporting format)
// and RFC 3834 (automatic responses), plus the non-standard formats of real
// mail servers. It owns the domain types every other package uses: Report,
// Recipient, Kind, Action, Class, Reason and Status.
//
// The package is pure: it does no I/O, reads no clock and touches no
// database, so it can be fuzzed and benchmarked in isolation.
package parse
