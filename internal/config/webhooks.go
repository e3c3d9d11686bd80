package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Webhook and group commit defaults.
const (
	WebhookMaxBodyBytesDefault    = 5 << 20
	WebhookTimestampWindowDefault = 5 * time.Minute
	GroupCommitWaitDefault        = 2 * time.Millisecond
	GroupCommitMaxInputsDefault   = 256
	GroupCommitWorkersDefault     = 2
)

// SNSCertHostsDefault are the hosts Amazon SNS serves its signing
// certificates from; "*" stands for one DNS label (the region).
var SNSCertHostsDefault = []string{"sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"}

// Webhooks configure the ESP webhook routes. Each list holds one entry per
// account; a provider with no credentials is not configured and its route
// answers 404.
type Webhooks struct {
	MaxBodyBytes int64
	// TimestampWindow is how far a signed timestamp may be from now.
	TimestampWindow time.Duration

	SESTopicARNs       []string // "*" accepts any topic
	SESCertHosts       []string
	SESAutoConfirm     bool
	SendGridPublicKeys []string // base64 DER, as SendGrid shows them
	MailgunSigningKeys []string
	PostmarkBasicAuth  []string // user:password
	PostmarkTokens     []string
	SparkPostBasicAuth []string
	SparkPostTokens    []string
	MailjetBasicAuth   []string
	BrevoBasicAuth     []string
	BrevoTokens        []string
	MandrillKeys       []string
	MandrillURLs       []string // the webhook URLs exactly as configured at Mandrill
	ResendSecrets      []string // whsec_...
	PostalPublicKeys   []string // base64 DER or PEM
	GenericSecrets     []string
}

// GroupCommit tunes how webhook requests share transactions.
type GroupCommit struct {
	Wait      time.Duration
	MaxInputs int64
	Workers   int64
}

func defaultWebhooks() Webhooks {
	return Webhooks{
		MaxBodyBytes:    WebhookMaxBodyBytesDefault,
		TimestampWindow: WebhookTimestampWindowDefault,
		SESCertHosts:    SNSCertHostsDefault,
		SESAutoConfirm:  true,
	}
}

func defaultGroupCommit() GroupCommit {
	return GroupCommit{Wait: GroupCommitWaitDefault, MaxInputs: GroupCommitMaxInputsDefault, Workers: GroupCommitWorkersDefault}
}

func (w *Webhooks) options() []option {
	return []option{
		intOpt("webhook-max-body-bytes", "BOUNCED_WEBHOOK_MAX_BODY_BYTES", "largest webhook body accepted", &w.MaxBodyBytes),
		durOpt("webhook-timestamp-window", "BOUNCED_WEBHOOK_TIMESTAMP_WINDOW", "how far a webhook's signed timestamp may be from now", &w.TimestampWindow),
		keyListOpt("webhook-ses-topic-arns", "BOUNCED_WEBHOOK_SES_TOPIC_ARNS", "SNS topic ARNs accepted on /v1/webhooks/ses (* for any)", &w.SESTopicARNs, false),
		keyListOpt("webhook-ses-cert-hosts", "BOUNCED_WEBHOOK_SES_CERT_HOSTS", "hosts SNS signing certificates may come from (* is one DNS label)", &w.SESCertHosts, false),
		boolFlagOpt("webhook-ses-auto-confirm", "BOUNCED_WEBHOOK_SES_AUTO_CONFIRM", "confirm SNS subscriptions by fetching their SubscribeURL", &w.SESAutoConfirm),
		keyListOpt("webhook-sendgrid-public-keys", "BOUNCED_WEBHOOK_SENDGRID_PUBLIC_KEYS", "SendGrid signed event webhook verification keys", &w.SendGridPublicKeys, true),
		keyListOpt("webhook-mailgun-signing-keys", "BOUNCED_WEBHOOK_MAILGUN_SIGNING_KEYS", "Mailgun webhook signing keys", &w.MailgunSigningKeys, true),
		keyListOpt("webhook-postmark-basic-auth", "BOUNCED_WEBHOOK_POSTMARK_BASIC_AUTH", "user:password pairs Postmark authenticates with", &w.PostmarkBasicAuth, true),
		keyListOpt("webhook-postmark-tokens", "BOUNCED_WEBHOOK_POSTMARK_TOKENS", "tokens Postmark sends as Authorization: Bearer or X-Bounced-Token", &w.PostmarkTokens, true),
		keyListOpt("webhook-sparkpost-basic-auth", "BOUNCED_WEBHOOK_SPARKPOST_BASIC_AUTH", "user:password pairs SparkPost authenticates with", &w.SparkPostBasicAuth, true),
		keyListOpt("webhook-sparkpost-tokens", "BOUNCED_WEBHOOK_SPARKPOST_TOKENS", "SparkPost webhook auth tokens (X-MessageSystems-Webhook-Token or Bearer)", &w.SparkPostTokens, true),
		keyListOpt("webhook-mailjet-basic-auth", "BOUNCED_WEBHOOK_MAILJET_BASIC_AUTH", "user:password pairs in the Mailjet event URL", &w.MailjetBasicAuth, true),
		keyListOpt("webhook-brevo-basic-auth", "BOUNCED_WEBHOOK_BREVO_BASIC_AUTH", "user:password pairs in the Brevo webhook URL", &w.BrevoBasicAuth, true),
		keyListOpt("webhook-brevo-tokens", "BOUNCED_WEBHOOK_BREVO_TOKENS", "Brevo webhook bearer tokens", &w.BrevoTokens, true),
		keyListOpt("webhook-mandrill-keys", "BOUNCED_WEBHOOK_MANDRILL_KEYS", "Mandrill webhook keys", &w.MandrillKeys, true),
		keyListOpt("webhook-mandrill-urls", "BOUNCED_WEBHOOK_MANDRILL_URLS", "webhook URLs exactly as entered at Mandrill (they are signed)", &w.MandrillURLs, false),
		keyListOpt("webhook-resend-secrets", "BOUNCED_WEBHOOK_RESEND_SECRETS", "Resend (Svix) signing secrets, whsec_...", &w.ResendSecrets, true),
		keyListOpt("webhook-postal-public-keys", "BOUNCED_WEBHOOK_POSTAL_PUBLIC_KEYS", "Postal servers' signing public keys (base64 DER or PEM)", &w.PostalPublicKeys, false),
		keyListOpt("webhook-generic-secrets", "BOUNCED_WEBHOOK_GENERIC_SECRETS", "shared secrets of the generic HMAC-SHA256 webhook", &w.GenericSecrets, true),
	}
}

func (g *GroupCommit) options() []option {
	return []option{
		durOpt("group-commit-wait", "BOUNCED_GROUP_COMMIT_WAIT", "longest an input (webhook, posted message, mail) waits for others to share its commit (0: no wait)", &g.Wait),
		intOpt("group-commit-max-inputs", "BOUNCED_GROUP_COMMIT_MAX_INPUTS", "most inputs committed together", &g.MaxInputs),
		intOpt("group-commit-workers", "BOUNCED_GROUP_COMMIT_WORKERS", "group commits running at once", &g.Workers),
	}
}

func (w Webhooks) validate() error {
	switch {
	case w.MaxBodyBytes < 1024:
		return fmt.Errorf("config: webhook-max-body-bytes: %d is below 1024", w.MaxBodyBytes)
	case w.TimestampWindow <= 0:
		return errors.New("config: webhook-timestamp-window: must be positive")
	case len(w.MandrillKeys) > 0 && len(w.MandrillURLs) == 0:
		return errors.New("config: webhook-mandrill-urls: needed with webhook-mandrill-keys (Mandrill signs the URL)")
	}
	for _, cred := range slices.Concat(w.PostmarkBasicAuth, w.SparkPostBasicAuth, w.MailjetBasicAuth, w.BrevoBasicAuth) {
		if user, pass, ok := strings.Cut(cred, ":"); !ok || user == "" || pass == "" {
			return errors.New("config: webhook-*-basic-auth: every entry must be user:password")
		}
	}
	return nil
}

func (g GroupCommit) validate() error {
	switch {
	case g.Wait < 0 || g.Wait > time.Second:
		return fmt.Errorf("config: group-commit-wait: %v is not between 0 and 1s", g.Wait)
	case g.MaxInputs < 1 || g.MaxInputs > 10000:
		return fmt.Errorf("config: group-commit-max-inputs: %d is not between 1 and 10000", g.MaxInputs)
	case g.Workers < 1 || g.Workers > 64:
		return fmt.Errorf("config: group-commit-workers: %d is not between 1 and 64", g.Workers)
	}
	return nil
}

// keyListOpt reads a list of keys or secrets separated by commas or
// newlines (one a line in a _FILE); PEM blocks stay whole.
func keyListOpt(name, env, usage string, p *[]string, secret bool) option {
	o := option{flag: name, env: env, usage: usage + " (comma-separated)", secret: secret,
		set: func(s string) error { *p = splitList(s); return nil },
		get: func() string { return strings.Join(*p, ",") }}
	if secret {
		o.usage += "; " + env + "_FILE reads them from a file"
	}
	return o
}

func splitList(s string) []string {
	var out []string
	if strings.Contains(s, "-----BEGIN") {
		for rest := s; ; {
			i := strings.Index(rest, "-----BEGIN")
			if i < 0 {
				return out
			}
			end := strings.Index(rest[i:], "-----END")
			if end < 0 {
				return append(out, strings.TrimSpace(rest[i:]))
			}
			stop := i + end + len("-----END")
			if eol := strings.Index(rest[stop:], "-----"); eol >= 0 {
				stop += eol + len("-----")
			}
			out = append(out, strings.TrimSpace(rest[i:stop]))
			rest = rest[stop:]
		}
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// boolFlagOpt is a true/false setting with a flag as well as a variable.
func boolFlagOpt(name, env, usage string, p *bool) option {
	o := boolOpt(env, p)
	o.flag, o.usage = name, usage
	return o
}
