package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(tt.args, tt.env, io.Discard)
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
	c, err := Load(nil, env("DATABASE_URL", "postgres://u:hunter2@db/x", "BOUNCED_ADMIN_KEY", "swordfish-swordfish-swordfish"), io.Discard)
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
}
