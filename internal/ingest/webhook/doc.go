// Package webhook receives email service providers' event webhooks:
// Amazon SES through SNS, SendGrid, Mailgun, Postmark, SparkPost, Mailjet,
// Brevo, Mandrill, Resend, Postal and a generic signed JSON shape.
//
// Every request is authenticated before its events are read, with the
// provider's own scheme: the SNS message signature (SignatureVersion 1,
// RSA-SHA1, and 2, RSA-SHA256) with a certificate fetched from an
// allow-listed host; SendGrid's ECDSA P-256 signature over timestamp and
// body; Mailgun's HMAC-SHA256 of timestamp and token, each token claimed
// in PostgreSQL with its body's hash (every replica refuses a replay);
// Mandrill's HMAC-SHA1 over the webhook URL and sorted form fields; the
// Standard Webhooks (Svix) scheme Resend uses; Postal's RSA signature;
// HTTP Basic authentication (RFC 7617) or bearer tokens (RFC 6750) for
// providers that only offer those; HMAC-SHA256 (RFC 2104) for the generic
// shape. Signed timestamps must lie within a configured window.
//
// Each authenticated request is stored whole, with the events read from
// it, in one transaction (store.Input with Source "webhook"); the request
// is answered only after that commits. Events carry the provider's event
// id, or a hash of the normalised event where the provider has none, so a
// redelivered event is recorded once. Event types that say nothing about
// deliverability (opens, clicks) and types this package does not know are
// stored in the raw payload, counted and otherwise ignored.
//
// Status codes and diagnostics are classified with parse.ClassifyStatus
// wherever the provider's own bounce type is coarser than the code.
//
// # Adding a provider
//
// Each provider is one file that registers a spec (registry.go): its
// route name, settings, how its receiver is built from them (verify and
// decode), its decoder of testdata payloads, and its test signer. From
// the registry come the routes (cmd/bounced passes them to the API), the
// settings (BOUNCED_WEBHOOK_{NAME}_{SETTING}, through config.Load), the
// signed-fixture tests, the golden tests and the fuzz target. Besides the
// file, a provider needs fixtures in testdata/{name}/ (with golden files:
// go test -update), its route in openapi.yaml, and in the README its
// settings and a row for each of its event types; tests fail until each
// is there.
package webhook
