// Package push delivers changes of the suppression lists to outbound
// webhook subscriptions: each delivery signed the Standard Webhooks way
// (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 of
// HMAC-SHA256 of "id.timestamp.body">, secrets whsec_<base64>), sent at
// least once by Deliverers that any number of replicas run (deliveries
// are claimed in the database), retried with exponential backoff and
// jitter, and dead after the last attempt.
//
// Outbound requests are bounded (a timeout, a cap on the response read,
// no redirect followed) and refuse loopback, private, link-local and
// other non-public destinations unless allowed (Client), checked on the
// address actually dialled, so a name that resolves to one is refused too.
package push
