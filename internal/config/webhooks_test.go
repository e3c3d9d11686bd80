package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testProviders is a webhook provider table like the registry's.
var testProviders = []WebhookProvider{
	{Name: "generic", Settings: []WebhookSetting{{Name: "secrets", Secret: true}}},
	{Name: "ses", Settings: []WebhookSetting{
		{Name: "topic-arns", Credential: true},
		{Name: "cert-hosts", Default: []string{"sns.*.amazonaws.com"}},
		{Name: "auto-confirm", Bool: true, Default: []string{"true"}},
	}},
	{Name: "postmark", Settings: []WebhookSetting{{Name: "basic-auth", Secret: true, UserPassword: true}}},
}

func TestWebhookTenants(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tenants.json")
	if err := os.WriteFile(file, []byte(`{"acme": {"generic": {"secrets": ["s-acme"]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		env    func(string) string
		check  func(Webhooks) bool
		errSub string
	}{
		{"none by default", env(), func(w Webhooks) bool { return len(w.Tenants) == 0 }, ""},
		{"one tenant, lists and strings", env("BOUNCED_WEBHOOK_GENERIC_SECRETS", "s-global",
			"BOUNCED_WEBHOOK_TENANTS", `{"acme": {"generic": {"secrets": ["s1", "s2"]}, "ses": {"topic-arns": "arn:aws:sns:eu-west-1:1:acme", "auto-confirm": false}}}`),
			func(w Webhooks) bool {
				a := w.Tenants["acme"]
				return len(a["generic"]["secrets"]) == 2 && a["ses"]["topic-arns"][0] == "arn:aws:sns:eu-west-1:1:acme" &&
					!a["ses"].Bool("auto-confirm") && a["ses"]["cert-hosts"][0] == "sns.*.amazonaws.com" &&
					w.Providers["generic"]["secrets"][0] == "s-global"
			}, ""},
		{"from a file", env("BOUNCED_WEBHOOK_TENANTS_FILE", file), func(w Webhooks) bool { return w.Tenants["acme"]["generic"]["secrets"][0] == "s-acme" }, ""},
		{"not JSON", env("BOUNCED_WEBHOOK_TENANTS", `acme=generic`), nil, "not JSON"},
		{"unknown provider", env("BOUNCED_WEBHOOK_TENANTS", `{"acme": {"nope": {}}}`), nil, `no webhook provider "nope"`},
		{"unknown setting", env("BOUNCED_WEBHOOK_TENANTS", `{"acme": {"generic": {"keys": ["x"]}}}`), nil, `no setting "keys"`},
		{"bad tenant name", env("BOUNCED_WEBHOOK_TENANTS", `{"Acme Inc": {"generic": {"secrets": ["x"]}}}`), nil, "not a tenant name"},
		{"a credential bound twice", env("BOUNCED_WEBHOOK_TENANTS", `{"acme": {"generic": {"secrets": ["x"]}}, "globex": {"generic": {"secrets": ["x"]}}}`),
			nil, "bind each credential once"},
		{"a tenant's credential also unbound", env("BOUNCED_WEBHOOK_GENERIC_SECRETS", "x", "BOUNCED_WEBHOOK_TENANTS", `{"acme": {"generic": {"secrets": ["x"]}}}`),
			nil, "bound to no tenant and to tenant \"acme\""},
		{"any topic bound to a tenant", env("BOUNCED_WEBHOOK_TENANTS", `{"acme": {"ses": {"topic-arns": ["*"]}}}`), nil, "* is not a credential of one tenant"},
		{"a tenant's settings are checked", env("BOUNCED_WEBHOOK_TENANTS", `{"acme": {"postmark": {"basic-auth": ["nopassword"]}}}`), nil, "user:password"},
		{"a bool that is not", env("BOUNCED_WEBHOOK_TENANTS", `{"acme": {"ses": {"auto-confirm": "yes"}}}`), nil, "true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(nil, tt.env, io.Discard, testProviders...)
			if tt.errSub != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errSub) {
					t.Errorf("Load() error = %v, want one mentioning %q", err, tt.errSub)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load() error = %v", err)
			}
			if !tt.check(c.Webhooks) {
				t.Errorf("Load().Webhooks.Tenants = %+v", c.Webhooks.Tenants)
			}
			if strings.Contains(c.String(), "s-acme") || strings.Contains(c.String(), `"s1"`) {
				t.Errorf("String() shows a tenant's secret")
			}
		})
	}
}
