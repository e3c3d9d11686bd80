package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadMailboxes(t *testing.T) {
	t.Parallel()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	two := env(
		"BOUNCED_IMAP_MAILBOXES", "bounces, support-desk",
		"BOUNCED_IMAP_BOUNCES_HOST", "imap.example.net",
		"BOUNCED_IMAP_BOUNCES_USER", "bounces@example.net",
		"BOUNCED_IMAP_BOUNCES_PASSWORD_FILE", pwFile,
		"BOUNCED_IMAP_BOUNCES_ACTION", "flag",
		"BOUNCED_IMAP_BOUNCES_KEYWORD", "Done",
		"BOUNCED_IMAP_BOUNCES_IDLE", "false",
		"BOUNCED_IMAP_BOUNCES_POLL_INTERVAL", "2m",
		"BOUNCED_IMAP_SUPPORT_DESK_HOST", "127.0.0.1",
		"BOUNCED_IMAP_SUPPORT_DESK_PORT", "1143",
		"BOUNCED_IMAP_SUPPORT_DESK_TLS", "plain",
		"BOUNCED_IMAP_SUPPORT_DESK_USER", "desk",
		"BOUNCED_IMAP_SUPPORT_DESK_PASSWORD", "pw",
		"BOUNCED_IMAP_SUPPORT_DESK_FOLDER", "Bounces",
	)
	imapOK := []string{"BOUNCED_IMAP_MAILBOXES", "b", "BOUNCED_IMAP_B_HOST", "h", "BOUNCED_IMAP_B_USER", "u", "BOUNCED_IMAP_B_PASSWORD", "p"}
	with := func(kv ...string) func(string) string { return env(append(append([]string{}, imapOK...), kv...)...) }
	tests := []struct {
		name   string
		args   []string
		env    func(string) string
		check  func(Mailboxes) bool
		errSub string
	}{
		{"off by default", nil, env(), func(m Mailboxes) bool {
			return len(m.IMAP) == 0 && len(m.Maildirs) == 0 && m.SMTPListen == "" && m.LMTPSocket == "" && m.VERPPrefix == "" &&
				m.UnhealthyAfter == MailboxUnhealthyAfterDefault && m.LeaseTTL == MailboxLeaseTTLDefault
		}, ""},
		{"two imap mailboxes", nil, two, func(m Mailboxes) bool {
			if len(m.IMAP) != 2 {
				return false
			}
			b, s := m.IMAP[0], m.IMAP[1]
			return b.Name == "bounces" && b.Host == "imap.example.net" && b.Password == "from-file" && b.Action == "flag" &&
				b.Keyword == "Done" && !b.Idle && b.PollInterval == 2*time.Minute && b.TLS == "tls" && b.Folder == "INBOX" &&
				s.Name == "support-desk" && s.Port == 1143 && s.TLS == "plain" && s.Folder == "Bounces" && s.Idle && s.Action == "move"
		}, ""},
		{"imap names by flag", []string{"--imap-mailboxes", "b"}, env("BOUNCED_IMAP_B_HOST", "h", "BOUNCED_IMAP_B_USER", "u", "BOUNCED_IMAP_B_PASSWORD", "p"),
			func(m Mailboxes) bool { return len(m.IMAP) == 1 && m.IMAP[0].Host == "h" }, ""},
		{"missing host", nil, env("BOUNCED_IMAP_MAILBOXES", "b"), nil, "BOUNCED_IMAP_B_HOST"},
		{"missing password", nil, env("BOUNCED_IMAP_MAILBOXES", "b", "BOUNCED_IMAP_B_HOST", "h", "BOUNCED_IMAP_B_USER", "u"), nil, "BOUNCED_IMAP_B_PASSWORD"},
		{"bad mailbox name", nil, env("BOUNCED_IMAP_MAILBOXES", "Bad Name"), nil, "not a mailbox name"},
		{"name twice", nil, env("BOUNCED_IMAP_MAILBOXES", "a_b,a-b"), nil, "named twice"},
		{"bad action", nil, with("BOUNCED_IMAP_B_ACTION", "archive"), nil, "BOUNCED_IMAP_B_ACTION"},
		{"bad tls", nil, with("BOUNCED_IMAP_B_TLS", "ssl"), nil, "BOUNCED_IMAP_B_TLS"},
		{"bad port", nil, with("BOUNCED_IMAP_B_PORT", "imap"), nil, "BOUNCED_IMAP_B_PORT"},
		{"bad bool", nil, with("BOUNCED_IMAP_B_IDLE", "maybe"), nil, "BOUNCED_IMAP_B_IDLE"},
		{"password and file", nil, with("BOUNCED_IMAP_B_PASSWORD_FILE", pwFile), nil, "both"},
		{"maildirs", []string{"--maildir", "/var/mail/a,/var/mail/b", "--maildir-action", "move"}, env(), func(m Mailboxes) bool {
			return len(m.Maildirs) == 2 && m.Maildirs[1] == "/var/mail/b" && m.MaildirAction == "move"
		}, ""},
		{"bad maildir action", nil, env("BOUNCED_MAILDIR_ACTION", "eat"), nil, "maildir-action"},
		{"smtp", nil, env("BOUNCED_SMTP_LISTEN", ":25", "BOUNCED_SMTP_DOMAINS", "bounce.example.net, b2.example.net", "BOUNCED_VERP_PREFIX", "bounces"),
			func(m Mailboxes) bool {
				return m.SMTPListen == ":25" && len(m.SMTPDomains) == 2 && m.VERPPrefix == "bounces" && m.VERPSeparator == "+" &&
					m.SMTPMaxRecipients == SMTPMaxRecipientsDefault
			}, ""},
		{"smtp without domains is refused", nil, env("BOUNCED_SMTP_LISTEN", ":25"), nil, "smtp-domains"},
		{"lmtp without domains is refused", nil, env("BOUNCED_LMTP_SOCKET", "/run/b.sock"), nil, "smtp-domains"},
		{"cert without key", nil, env("BOUNCED_SMTP_TLS_CERT_FILE", "/c.pem"), nil, "go together"},
		{"bad socket mode", nil, env("BOUNCED_LMTP_SOCKET_MODE", "rw"), nil, "lmtp-socket-mode"},
		{"bad verp separator", nil, env("BOUNCED_VERP_SEPARATOR", "="), nil, "verp-separator"},
		{"tiny lease", nil, env("BOUNCED_MAILBOX_LEASE_TTL", "10ms"), nil, "lease-ttl"},
		{"imap tenant", nil, with("BOUNCED_IMAP_B_TENANT", "acme"), func(m Mailboxes) bool { return m.IMAP[0].Tenant == "acme" }, ""},
		{"bad imap tenant", nil, with("BOUNCED_IMAP_B_TENANT", "Acme Inc"), nil, "BOUNCED_IMAP_B_TENANT"},
		{"maildir tenants", nil, env("BOUNCED_MAILDIR", "/m/a,/m/b", "BOUNCED_MAILDIR_TENANTS", "/m/a=acme"), func(m Mailboxes) bool {
			got, err := m.MaildirTenantMap()
			return err == nil && len(got) == 1 && got["/m/a"] == "acme"
		}, ""},
		{"maildir tenant of an unwatched path", nil, env("BOUNCED_MAILDIR", "/m/a", "BOUNCED_MAILDIR_TENANTS", "/m/c=acme"), nil, "not one of the Maildirs"},
		{"maildir bound twice", nil, env("BOUNCED_MAILDIR", "/m/a", "BOUNCED_MAILDIR_TENANTS", "/m/a=acme,/m/a=globex"), nil, "bound twice"},
		{"smtp tenants", nil, env("BOUNCED_SMTP_LISTEN", ":25", "BOUNCED_SMTP_DOMAINS", "b.acme.example,b.example.net",
			"BOUNCED_SMTP_TENANTS", "B.acme.example=acme,bounces@b.example.net=globex"), func(m Mailboxes) bool {
			got, err := m.SMTPTenantMap()
			return err == nil && len(got) == 2 && got["b.acme.example"] == "acme" && got["bounces@b.example.net"] == "globex"
		}, ""},
		{"smtp tenant of a domain not accepted", nil, env("BOUNCED_SMTP_LISTEN", ":25", "BOUNCED_SMTP_DOMAINS", "b.example.net",
			"BOUNCED_SMTP_TENANTS", "other.example=acme"), nil, "smtp-tenants"},
		{"smtp tenant without =", nil, env("BOUNCED_SMTP_TENANTS", "acme"), nil, "KEY=TENANT"},
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
			if !tt.check(c.Mailboxes) {
				t.Errorf("Load().Mailboxes = %+v", c.Mailboxes)
			}
		})
	}
}

func TestMailboxPasswordsMasked(t *testing.T) {
	t.Parallel()
	c, err := Load(nil, env("BOUNCED_IMAP_MAILBOXES", "b", "BOUNCED_IMAP_B_HOST", "h", "BOUNCED_IMAP_B_USER", "u", "BOUNCED_IMAP_B_PASSWORD", "hunter2"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "BOUNCED_IMAP_B_PASSWORD=********") {
		t.Errorf("String() = %s", s)
	}
}

func TestLoadCommandArgs(t *testing.T) {
	t.Parallel()
	var progress string
	c, rest, err := LoadCommand("ingest", []string{"--progress", "never", "--log-level", "debug", "/var/mail/x"}, env(), io.Discard,
		func(fs *flag.FlagSet) { fs.StringVar(&progress, "progress", "auto", "") })
	if err != nil || len(rest) != 1 || rest[0] != "/var/mail/x" || progress != "never" || c.LogLevel != "debug" {
		t.Errorf("LoadCommand = %v, %v, %v (progress %q)", c.LogLevel, rest, err, progress)
	}
}
