package config

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// testWebhooks declares settings of the kinds webhook providers have (the
// real table is the webhook package's registry, tested there).
var testWebhooks = []WebhookProvider{
	{Name: "ses", Settings: []WebhookSetting{
		{Name: "topic-arns", Usage: "topics"},
		{Name: "cert-hosts", Usage: "hosts", Default: SNSCertHostsDefault},
		{Name: "auto-confirm", Usage: "confirm", Bool: true, Default: []string{"true"}},
	}},
	{Name: "sendgrid", Settings: []WebhookSetting{{Name: "public-keys", Usage: "keys", Secret: true}}},
	{Name: "mailgun", Settings: []WebhookSetting{{Name: "signing-keys", Usage: "keys", Secret: true}}},
	{Name: "mailjet", Settings: []WebhookSetting{{Name: "basic-auth", Usage: "users", Secret: true, UserPassword: true}}},
	{Name: "mandrill", Settings: []WebhookSetting{{Name: "keys", Usage: "keys", Secret: true}, {Name: "urls", Usage: "urls"}},
		Check: func(s ProviderSettings) error {
			if len(s.List("keys")) > 0 && len(s.List("urls")) == 0 {
				return errors.New("webhook-mandrill-urls: needed with webhook-mandrill-keys")
			}
			return nil
		}},
	{Name: "postal", Settings: []WebhookSetting{{Name: "public-keys", Usage: "keys"}}},
	{Name: "generic", Settings: []WebhookSetting{{Name: "secrets", Usage: "secrets", Secret: true}}},
}

func TestLoad(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(secret, []byte("postgres://from-file/db\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(t.TempDir(), "generic")
	if err := os.WriteFile(secrets, []byte("first\nsecond\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pems := filepath.Join(t.TempDir(), "postal.pem")
	pemText := "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n-----BEGIN PUBLIC KEY-----\nBBBB\nCCCC\n-----END PUBLIC KEY-----\n"
	if err := os.WriteFile(pems, []byte(pemText), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		env    func(string) string
		check  func(Config) bool
		errSub string
	}{
		{"defaults", nil, env(), func(c Config) bool {
			return c.Listen == ListenDefault && c.DatabaseURL == "" && c.DataDir == DataDirDefault && c.MaxBodyBytes == MaxBodyBytesDefault
		}, ""},
		{"env", nil, env("BOUNCED_LISTEN", ":9000", "BOUNCED_SHUTDOWN_TIMEOUT", "5s"), func(c Config) bool {
			return c.Listen == ":9000" && c.ShutdownTimeout == 5*time.Second
		}, ""},
		{"flag beats env", []string{"--listen", ":9100"}, env("BOUNCED_LISTEN", ":9000"), func(c Config) bool { return c.Listen == ":9100" }, ""},
		{"DATABASE_URL", nil, env("DATABASE_URL", "postgres://a/b"), func(c Config) bool { return c.DatabaseURL == "postgres://a/b" }, ""},
		{"BOUNCED_DATABASE_URL beats DATABASE_URL", nil, env("DATABASE_URL", "postgres://a/b", "BOUNCED_DATABASE_URL", "postgres://c/d"), func(c Config) bool {
			return c.DatabaseURL == "postgres://c/d"
		}, ""},
		{"secret from file", nil, env("BOUNCED_DATABASE_URL_FILE", secret), func(c Config) bool { return c.DatabaseURL == "postgres://from-file/db" }, ""},
		{"value and file", nil, env("BOUNCED_DATABASE_URL_FILE", secret, "BOUNCED_DATABASE_URL", "x"), nil, "both BOUNCED_DATABASE_URL and BOUNCED_DATABASE_URL_FILE"},
		{"missing file", nil, env("BOUNCED_DATABASE_URL_FILE", "/nonexistent"), nil, "BOUNCED_DATABASE_URL_FILE"},
		{"bad number", nil, env("BOUNCED_MAX_BODY_BYTES", "lots"), nil, "BOUNCED_MAX_BODY_BYTES"},
		{"too small body", []string{"--max-body-bytes", "10"}, env(), nil, "max-body-bytes"},
		{"bad duration", []string{"--shutdown-timeout", "soon"}, env(), nil, "shutdown-timeout"},
		{"bad level", nil, env("BOUNCED_LOG_LEVEL", "loud"), nil, "log-level"},
		{"bad format", []string{"--log-format", "xml"}, env(), nil, "log-format"},
		{"stray argument", []string{"extra"}, env(), nil, "unexpected argument"},
		{"auth defaults to auto", nil, env(), func(c Config) bool { return c.Auth == "auto" && c.AdminKey == "" && c.RateLimit == 0 }, ""},
		{"auth modes", []string{"--auth", "on"}, env(), func(c Config) bool { return c.Auth == "on" }, ""},
		{"bad auth mode", nil, env("BOUNCED_AUTH", "maybe"), nil, "auth"},
		{"admin key from file", nil, env("BOUNCED_ADMIN_KEY_FILE", keyFile), func(c Config) bool { return c.AdminKey == "0123456789abcdef0123456789abcdef" }, ""},
		{"short admin key", nil, env("BOUNCED_ADMIN_KEY", "short"), nil, "admin-key"},
		{"rate limit", []string{"--rate-limit", "2.5", "--rate-burst", "10"}, env(), func(c Config) bool { return c.RateLimit == 2.5 && c.RateBurst == 10 }, ""},
		{"bad rate", nil, env("BOUNCED_RATE_LIMIT", "fast"), nil, "BOUNCED_RATE_LIMIT"},
		{"negative rate", []string{"--rate-limit", "-1"}, env(), nil, "rate-limit"},
		{"cache size", []string{"--check-cache-size", "0"}, env(), func(c Config) bool { return c.CheckCacheSize == 0 }, ""},
		{"webhook defaults", nil, env(), func(c Config) bool {
			w := c.Webhooks
			return w.MaxBodyBytes == WebhookMaxBodyBytesDefault && w.TimestampWindow == 5*time.Minute && w.Providers["ses"].Bool("auto-confirm") &&
				len(w.Providers["ses"].List("cert-hosts")) == 2 && len(w.Providers["sendgrid"].List("public-keys")) == 0 && c.GroupCommit.Wait == GroupCommitWaitDefault
		}, ""},
		{"webhook lists", nil, env("BOUNCED_WEBHOOK_MAILGUN_SIGNING_KEYS", " k1, k2 ,,k3", "BOUNCED_WEBHOOK_SES_TOPIC_ARNS", "arn:aws:sns:eu-west-1:1:a"), func(c Config) bool {
			return slices.Equal(c.Webhooks.Providers["mailgun"].List("signing-keys"), []string{"k1", "k2", "k3"}) && len(c.Webhooks.Providers["ses"].List("topic-arns")) == 1
		}, ""},
		{"webhook secrets from a file, one a line", nil, env("BOUNCED_WEBHOOK_GENERIC_SECRETS_FILE", secrets), func(c Config) bool {
			return slices.Equal(c.Webhooks.Providers["generic"].List("secrets"), []string{"first", "second"})
		}, ""},
		{"PEM keys stay whole", nil, env("BOUNCED_WEBHOOK_POSTAL_PUBLIC_KEYS_FILE", pems), func(c Config) bool {
			k := c.Webhooks.Providers["postal"].List("public-keys")
			return len(k) == 2 && strings.HasPrefix(k[1], "-----BEGIN PUBLIC KEY-----\nBBBB") && strings.HasSuffix(k[1], "-----END PUBLIC KEY-----")
		}, ""},
		{"flag list", []string{"--webhook-sendgrid-public-keys", "a,b", "--webhook-ses-auto-confirm=false"}, env(), func(c Config) bool {
			return len(c.Webhooks.Providers["sendgrid"].List("public-keys")) == 2 && !c.Webhooks.Providers["ses"].Bool("auto-confirm")
		}, ""},
		{"mandrill keys without URL", nil, env("BOUNCED_WEBHOOK_MANDRILL_KEYS", "k"), nil, "webhook-mandrill-urls"},
		{"basic auth without password", nil, env("BOUNCED_WEBHOOK_MAILJET_BASIC_AUTH", "user"), nil, "user:password"},
		{"bad bool", nil, env("BOUNCED_WEBHOOK_SES_AUTO_CONFIRM", "maybe"), nil, "BOUNCED_WEBHOOK_SES_AUTO_CONFIRM"},
		{"bad window", []string{"--webhook-timestamp-window", "0s"}, env(), nil, "webhook-timestamp-window"},
		{"bad group commit", []string{"--group-commit-workers", "0"}, env(), nil, "group-commit-workers"},
		{"mx defaults", nil, env(), func(c Config) bool {
			return c.MXLookup == "on" && c.MXResolver == "" && c.MXTimeout == MXTimeoutDefault && c.MXCacheSize == MXCacheSizeDefault &&
				c.MXCacheTTL == MXCacheTTLDefault && c.MXConcurrency == MXConcurrencyDefault
		}, ""},
		{"mx settings", []string{"--mx-resolver", "127.0.0.1:5353", "--mx-timeout", "500ms"}, env("BOUNCED_MX_LOOKUP", "off", "BOUNCED_MX_CACHE_SIZE", "10",
			"BOUNCED_MX_CACHE_TTL", "1h", "BOUNCED_MX_CONCURRENCY", "2"), func(c Config) bool {
			return c.MXLookup == "off" && c.MXResolver == "127.0.0.1:5353" && c.MXTimeout == 500*time.Millisecond && c.MXCacheSize == 10 &&
				c.MXCacheTTL == time.Hour && c.MXConcurrency == 2
		}, ""},
		{"bad mx lookup", nil, env("BOUNCED_MX_LOOKUP", "maybe"), nil, "mx-lookup"},
		{"mx resolver without port", []string{"--mx-resolver", "127.0.0.1"}, env(), nil, "mx-resolver"},
		{"mx timeout too long", []string{"--mx-timeout", "1h"}, env(), nil, "mx-timeout"},
		{"mx cache empty", []string{"--mx-cache-size", "0"}, env(), nil, "mx-cache-size"},
		{"mx cache ttl too short", []string{"--mx-cache-ttl", "1s"}, env(), nil, "mx-cache-ttl"},
		{"mx concurrency unbounded", []string{"--mx-concurrency", "100000"}, env(), nil, "mx-concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tt.args, tt.env, io.Discard, testWebhooks...)
			if tt.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Errorf("Load() error = %v, want one mentioning %q", err, tt.errSub)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if !tt.check(c) {
				t.Errorf("Load() = %+v", c)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	_, err := Load([]string{"-h"}, env(), &out)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "BOUNCED_LISTEN") {
		t.Errorf("Load(-h) = %v, output %q", err, out.String())
	}
}

func TestStringMasksSecrets(t *testing.T) {
	t.Parallel()
	c, err := Load(nil, env("DATABASE_URL", "postgres://u:hunter2@db/x", "BOUNCED_ADMIN_KEY", "swordfish-swordfish-swordfish",
		"BOUNCED_WEBHOOK_GENERIC_SECRETS", "s3cret,other", "BOUNCED_WEBHOOK_MAILJET_BASIC_AUTH", "mj:pa55word"), io.Discard, testWebhooks...)
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	if strings.Contains(s, "hunter2") || !strings.Contains(s, "BOUNCED_DATABASE_URL=********") {
		t.Errorf("String() = %q, want the database URL masked", s)
	}
	if strings.Contains(s, "swordfish") || !strings.Contains(s, "BOUNCED_ADMIN_KEY=********") {
		t.Errorf("String() = %q, want the admin key masked", s)
	}
	for _, secret := range []string{"s3cret", "pa55word"} {
		if strings.Contains(s, secret) {
			t.Errorf("String() shows webhook secret %q", secret)
		}
	}
	if !strings.Contains(s, "BOUNCED_WEBHOOK_GENERIC_SECRETS=********\n") || !strings.Contains(s, "BOUNCED_WEBHOOK_SES_AUTO_CONFIRM=true\n") {
		t.Errorf("String() = %q, want every webhook setting", s)
	}
}

// TestReadmeNamesEverySetting keeps the README's configuration tables in
// step with the settings: an operator reads them, not this file. (The
// webhook providers' settings are checked with their registry.)
func TestReadmeNamesEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	for _, o := range c.options() {
		if !bytes.Contains(readme, []byte(o.env)) {
			t.Errorf("README.md does not mention %s (--%s)", o.env, o.flag)
		}
	}
}
