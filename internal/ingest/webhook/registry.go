package webhook

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bounced/bounced/internal/config"
)

// This file is the provider registry: each provider's file registers one
// spec, which says everything bounced needs to know about the provider
// (its route name, settings, how a receiver is built from them, its
// decoder, and how tests sign its requests). The routes, the settings
// table, the signed-fixture, golden and fuzz tests all read the registry,
// so adding a provider is one file (and its testdata, its route in
// openapi.yaml and its rows in the README, which tests require).

// spec describes one provider.
type spec struct {
	// name is the route's last element, /v1/webhooks/{name}.
	name string
	// probe says the route also answers HEAD (a provider that checks the
	// URL before saving it).
	probe bool
	// settings are the provider's settings (config.WebhookSetting), check
	// validates them together.
	settings []config.WebhookSetting
	check    func(config.ProviderSettings) error
	// build makes the provider's receiver from its settings; nil, nil when
	// the settings hold no credentials (the provider is not configured).
	build func(b *builder) (provider, error)
	// decodePayload decodes a payload as the test signer takes it (what
	// testdata/{name}/ holds) as if it had arrived verified.
	decodePayload func(payload []byte, now time.Time) (*decoded, error)
	// testSettings are settings accepting what testSign signs with k.
	testSettings func(k TestKeys) config.ProviderSettings
	// testSign turns a payload into the body and headers the provider
	// would send at now, signed with k.
	testSign func(k TestKeys, payload []byte, now time.Time) ([]byte, http.Header)
}

// builder is what a provider's receiver is built from.
type builder struct {
	settings config.ProviderSettings
	// window is how far a signed timestamp may be from now.
	window time.Duration
	client *http.Client
	logger *slog.Logger
	// recording says the receiver stores what it receives (a nil
	// recorder only checks the configuration). nonces keeps the nonces
	// of a provider whose signature does not cover the body, and
	// subscriptions the subscriptions confirmed, where every replica sees
	// them (both in PostgreSQL), when the recorder can.
	recording     bool
	nonces        NonceClaimer
	subscriptions SubscriptionKeeper
}

// registry holds every provider's spec by name; it is filled by the
// providers' init functions and never changes afterwards.
var registry = map[string]*spec{}

// register adds a provider's spec; a spec missing a part is a programming
// error caught at start.
func register(s spec) {
	switch {
	case s.name == "" || strings.ContainsFunc(s.name, func(r rune) bool { return (r < 'a' || r > 'z') && (r < '0' || r > '9') }):
		panic(fmt.Sprintf("webhook: provider name %q is not lower-case letters and digits", s.name))
	case registry[s.name] != nil:
		panic("webhook: provider " + s.name + " registered twice")
	case s.build == nil || s.decodePayload == nil || s.testSettings == nil || s.testSign == nil || len(s.settings) == 0:
		panic("webhook: provider " + s.name + " lacks a builder, decoder, settings or test signer")
	}
	registry[s.name] = &s
}

// Providers lists every registered provider, by name.
func Providers() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Settings is the settings table of every registered provider, for
// config.Load.
func Settings() []config.WebhookProvider {
	var out []config.WebhookProvider
	for _, name := range Providers() {
		s := registry[name]
		out = append(out, config.WebhookProvider{Name: name, Settings: s.settings, Check: s.check})
	}
	return out
}

// Route is a provider's route: POST /v1/webhooks/{Provider}, and HEAD
// when Probe is set.
type Route struct {
	Provider string
	Probe    bool
}

// Routes lists every registered provider's route.
func Routes() []Route {
	var out []Route
	for _, name := range Providers() {
		out = append(out, Route{Provider: name, Probe: registry[name].probe})
	}
	return out
}

// TestKeys are made-up credentials that tests and the load tool sign
// webhook requests with. Every provider's test signer takes the kinds its
// scheme needs; a provider that needs none of these has its own.
type TestKeys struct {
	// Secret is every shared secret: HMAC keys, tokens, and the password
	// of the Basic user TestUser.
	Secret string
	// ECDSA is a P-256 key (SendGrid).
	ECDSA *ecdsa.PrivateKey
	// RSA is a 2048-bit key (Postal; SNS signing certificates).
	RSA *rsa.PrivateKey
	// CertURL serves an SNS signing certificate for RSA over https.
	CertURL string
}

// TestUser is the Basic authentication user of TestKeys.
const TestUser = "hook"

// TestSettings are settings that accept requests signed with k, for every
// registered provider whose kind of key k holds.
func TestSettings(k TestKeys) map[string]config.ProviderSettings {
	out := map[string]config.ProviderSettings{}
	for name, s := range registry {
		if settings := s.testSettings(k); settings != nil {
			out[name] = settings
		}
	}
	return out
}

// SignTestRequest turns a provider's payload (as its testdata holds it)
// into the body and headers the provider would send at now, signed with
// k.
func SignTestRequest(provider string, k TestKeys, payload []byte, now time.Time) ([]byte, http.Header, error) {
	s := registry[provider]
	if s == nil {
		return nil, nil, fmt.Errorf("webhook: no provider %q", provider)
	}
	body, h := s.testSign(k, payload, now)
	return body, h, nil
}

// basicAuth is the Authorization header of user and password.
func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}
