package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
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

// Webhooks configure the ESP webhook routes: limits shared by every
// provider, and each provider's own settings (its credentials, one entry
// per account) by provider name. A provider without credentials is not
// configured and its route answers 404.
//
// Which providers exist and what settings each takes is not known here:
// the webhook package declares them (its provider registry) and the
// command passes that table to Load, so a provider is added in one place.
type Webhooks struct {
	MaxBodyBytes int64
	// TimestampWindow is how far a signed timestamp may be from now.
	TimestampWindow time.Duration
	// Providers holds each provider's settings by provider name.
	Providers map[string]ProviderSettings
	// Tenants holds the credentials bound to tenants: by tenant, each
	// provider's settings (read from BOUNCED_WEBHOOK_TENANTS, JSON). A
	// request that verifies with a tenant's credentials is that tenant's:
	// its events are recorded in the tenant's scopes only.
	Tenants map[string]map[string]ProviderSettings
	// tenantsJSON is Tenants as given, for printing (masked).
	tenantsJSON string

	// table is the providers whose settings were read (see Load).
	table []WebhookProvider
}

// WebhookProvider declares one webhook provider's settings.
type WebhookProvider struct {
	// Name is the provider's route name (/v1/webhooks/{Name}).
	Name     string
	Settings []WebhookSetting
	// Check validates the provider's settings together; nil when there is
	// nothing to check beyond each setting's own form.
	Check func(ProviderSettings) error
}

// WebhookSetting is one setting of a provider: the flag
// --webhook-{provider}-{Name} and the variable
// BOUNCED_WEBHOOK_{PROVIDER}_{NAME} (upper case, "-" as "_"), with
// {variable}_FILE reading it from a file.
type WebhookSetting struct {
	Name  string
	Usage string
	// Secret settings are masked when printed.
	Secret bool
	// Bool settings hold true or false; the others are lists, separated by
	// commas or newlines (one a line in a _FILE), PEM blocks kept whole.
	Bool bool
	// UserPassword says every entry is user:password.
	UserPassword bool
	// Default is the value when nothing sets it ("true" or "false" for a
	// Bool setting).
	Default []string
	// Credential settings tell senders apart (every Secret setting is
	// one): a value may be bound to one tenant, or to none, not to two.
	Credential bool
}

// identifies reports whether a setting's values tell senders apart.
func (st WebhookSetting) identifies() bool { return st.Secret || st.Credential }

// ProviderSettings are one provider's settings by setting name: a list's
// entries, or one "true" or "false".
type ProviderSettings map[string][]string

// List returns the entries of a list setting.
func (s ProviderSettings) List(name string) []string { return s[name] }

// Bool returns a true/false setting.
func (s ProviderSettings) Bool(name string) bool {
	v := s[name]
	return len(v) == 1 && v[0] == "true"
}

// WebhookSettingEnv is the environment variable of a provider's setting.
func WebhookSettingEnv(provider, setting string) string {
	return "BOUNCED_WEBHOOK_" + strings.ToUpper(strings.ReplaceAll(provider+"_"+setting, "-", "_"))
}

// WebhookSettingFlag is the flag of a provider's setting, without dashes.
func WebhookSettingFlag(provider, setting string) string {
	return "webhook-" + provider + "-" + setting
}

// GroupCommit tunes how webhook requests share transactions.
type GroupCommit struct {
	Wait      time.Duration
	MaxInputs int64
	Workers   int64
}

func defaultWebhooks(providers []WebhookProvider) Webhooks {
	w := Webhooks{
		MaxBodyBytes:    WebhookMaxBodyBytesDefault,
		TimestampWindow: WebhookTimestampWindowDefault,
		Providers:       map[string]ProviderSettings{},
		table:           providers,
	}
	for _, p := range providers {
		s := ProviderSettings{}
		for _, st := range p.Settings {
			if st.Default != nil {
				s[st.Name] = slices.Clone(st.Default)
			}
		}
		w.Providers[p.Name] = s
	}
	return w
}

func defaultGroupCommit() GroupCommit {
	return GroupCommit{Wait: GroupCommitWaitDefault, MaxInputs: GroupCommitMaxInputsDefault, Workers: GroupCommitWorkersDefault}
}

func (w *Webhooks) options() []option {
	opts := []option{
		intOpt("webhook-max-body-bytes", "BOUNCED_WEBHOOK_MAX_BODY_BYTES", "largest webhook body accepted", &w.MaxBodyBytes),
		durOpt("webhook-timestamp-window", "BOUNCED_WEBHOOK_TIMESTAMP_WINDOW", "how far a webhook's signed timestamp may be from now", &w.TimestampWindow),
	}
	for _, p := range w.table {
		for _, st := range p.Settings {
			opts = append(opts, w.settingOpt(p.Name, st))
		}
	}
	return append(opts, option{flag: "webhook-tenants", env: "BOUNCED_WEBHOOK_TENANTS", secret: true,
		usage: `webhook credentials bound to tenants, JSON: {"TENANT": {"PROVIDER": {"SETTING": ["value", ...]}}}; BOUNCED_WEBHOOK_TENANTS_FILE reads it from a file`,
		set:   w.setTenants,
		get:   func() string { return w.tenantsJSON }})
}

// setTenants reads BOUNCED_WEBHOOK_TENANTS: by tenant, by provider, each
// setting's values (a string, a list of strings, or true/false for a
// Bool setting). Settings a tenant does not give take their defaults.
func (w *Webhooks) setTenants(v string) error {
	w.tenantsJSON, w.Tenants = v, nil
	if strings.TrimSpace(v) == "" {
		return nil
	}
	var raw map[string]map[string]map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(v))
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf(`not JSON of the form {"TENANT": {"PROVIDER": {"SETTING": ["value"]}}}: %w`, err)
	}
	w.Tenants = map[string]map[string]ProviderSettings{}
	for tenant, providers := range raw {
		w.Tenants[tenant] = map[string]ProviderSettings{}
		for provider, settings := range providers {
			var decl *WebhookProvider
			for i := range w.table {
				if w.table[i].Name == provider {
					decl = &w.table[i]
				}
			}
			if decl == nil {
				return fmt.Errorf("tenant %q: no webhook provider %q", tenant, provider)
			}
			s := ProviderSettings{}
			for _, st := range decl.Settings {
				if st.Default != nil {
					s[st.Name] = slices.Clone(st.Default)
				}
			}
			for name, value := range settings {
				i := slices.IndexFunc(decl.Settings, func(st WebhookSetting) bool { return st.Name == name })
				if i < 0 {
					return fmt.Errorf("tenant %q: provider %s has no setting %q", tenant, provider, name)
				}
				vals, err := settingValues(decl.Settings[i], value)
				if err != nil {
					return fmt.Errorf("tenant %q: %s %s: %w", tenant, provider, name, err)
				}
				s[name] = vals
			}
			w.Tenants[tenant][provider] = s
		}
	}
	return nil
}

// settingValues reads one setting's JSON value.
func settingValues(st WebhookSetting, v json.RawMessage) ([]string, error) {
	if st.Bool {
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return nil, errors.New("must be true or false")
		}
		return []string{strconv.FormatBool(b)}, nil
	}
	var one string
	if err := json.Unmarshal(v, &one); err == nil {
		return splitList(one), nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil {
		return nil, errors.New("must be a string or a list of strings")
	}
	var out []string
	for _, e := range list {
		out = append(out, splitList(e)...)
	}
	return out, nil
}

// settingOpt binds a provider's setting to its flag and variable.
func (w *Webhooks) settingOpt(provider string, st WebhookSetting) option {
	name, env := WebhookSettingFlag(provider, st.Name), WebhookSettingEnv(provider, st.Name)
	put := func(v []string) {
		if w.Providers == nil {
			w.Providers = map[string]ProviderSettings{}
		}
		if w.Providers[provider] == nil {
			w.Providers[provider] = ProviderSettings{}
		}
		w.Providers[provider][st.Name] = v
	}
	if st.Bool {
		return option{flag: name, env: env, usage: st.Usage,
			set: func(s string) error {
				b, err := strconv.ParseBool(s)
				if err != nil {
					return fmt.Errorf("%q is not true or false", s)
				}
				put([]string{strconv.FormatBool(b)})
				return nil
			},
			get: func() string { return strconv.FormatBool(w.Providers[provider].Bool(st.Name)) }}
	}
	o := option{flag: name, env: env, usage: st.Usage + " (comma-separated)", secret: st.Secret,
		set: func(s string) error { put(splitList(s)); return nil },
		get: func() string { return strings.Join(w.Providers[provider].List(st.Name), ",") }}
	if st.Secret {
		o.usage += "; " + env + "_FILE reads them from a file"
	}
	return o
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
	}
	for _, p := range w.table {
		if err := checkProvider(p, w.Providers[p.Name]); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return w.validateTenants()
}

// checkProvider validates one set of a provider's settings.
func checkProvider(p WebhookProvider, s ProviderSettings) error {
	for _, st := range p.Settings {
		if !st.UserPassword {
			continue
		}
		for _, cred := range s.List(st.Name) {
			if user, pass, ok := strings.Cut(cred, ":"); !ok || user == "" || pass == "" {
				return fmt.Errorf("%s: every entry must be user:password", WebhookSettingFlag(p.Name, st.Name))
			}
		}
	}
	if p.Check != nil {
		return p.Check(s)
	}
	return nil
}

// validateTenants checks the credentials bound to tenants: tenant names,
// each provider's settings as its own are checked, and no credential
// bound twice (to two tenants, or to a tenant and to none), nor a
// wildcard bound to a tenant: a request must verify with one binding
// only, so that which tenant it belongs to is never a matter of order.
func (w Webhooks) validateTenants() error {
	for _, p := range w.table {
		owner := map[string]string{} // "setting\x00value" -> tenant ("" for none)
		claim := func(tenant string, s ProviderSettings) error {
			for _, st := range p.Settings {
				if !st.identifies() {
					continue
				}
				for _, v := range s.List(st.Name) {
					if tenant != "" && v == "*" {
						return fmt.Errorf("config: webhook-tenants: tenant %q: %s %s: * is not a credential of one tenant", tenant, p.Name, st.Name)
					}
					k := st.Name + "\x00" + v
					if prev, ok := owner[k]; ok {
						return fmt.Errorf("config: webhook-tenants: a %s %s value is bound to %s and to %s; bind each credential once",
							p.Name, st.Name, boundTo(prev), boundTo(tenant))
					}
					owner[k] = tenant
				}
			}
			return nil
		}
		if err := claim("", w.Providers[p.Name]); err != nil {
			return err
		}
		for _, tenant := range slices.Sorted(maps.Keys(w.Tenants)) {
			s, ok := w.Tenants[tenant][p.Name]
			if !ok {
				continue
			}
			if err := checkProvider(p, s); err != nil {
				return fmt.Errorf("config: webhook-tenants: tenant %q: %w", tenant, err)
			}
			if err := claim(tenant, s); err != nil {
				return err
			}
		}
	}
	for tenant := range w.Tenants {
		if !ValidTenant(tenant) {
			return fmt.Errorf("config: webhook-tenants: %q is not a tenant name (1-63 of a-z 0-9 . _ -)", tenant)
		}
	}
	return nil
}

func boundTo(t string) string {
	if t == "" {
		return "no tenant"
	}
	return "tenant " + strconv.Quote(t)
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

// splitList reads a list of keys or secrets separated by commas or
// newlines; PEM blocks stay whole.
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
