package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mailbox defaults.
const (
	MailboxUnhealthyAfterDefault = 10 * time.Minute
	MailboxLeaseTTLDefault       = 30 * time.Second
	MailboxMaxAttemptsDefault    = 5
	VERPSeparatorDefault         = "+"
	MaildirActionDefault         = "seen"
	LMTPSocketModeDefault        = "0660"
	SMTPMaxMessageBytesDefault   = 10 << 20
	SMTPMaxRecipientsDefault     = 50
	SMTPMaxConnectionsDefault    = 100
	SMTPTimeoutDefault           = time.Minute
)

// Mailboxes is how bounced reads bounces as mail: IMAP mailboxes, local
// Maildirs and an SMTP/LMTP receiver. Each part is off until configured.
type Mailboxes struct {
	// IMAPNames are the names in BOUNCED_IMAP_MAILBOXES; IMAP holds each
	// one's settings, read from BOUNCED_IMAP_<NAME>_<SETTING>.
	IMAPNames []string
	IMAP      []IMAPMailbox
	// Maildirs to watch (paths, comma-separated in the variable).
	Maildirs []string
	// MaildirTenants binds Maildirs to tenants: PATH=TENANT entries.
	MaildirTenants      []string
	MaildirAction       string
	MaildirMoveTo       string
	MaildirPollInterval time.Duration

	SMTPListen     string // host:port; empty: no SMTP receiver
	LMTPSocket     string // unix socket path; empty: no LMTP receiver
	LMTPSocketMode string // octal
	SMTPDomains    []string
	SMTPAddresses  []string
	// SMTPTenants binds recipient domains or addresses of the SMTP/LMTP
	// receiver to tenants: DOMAIN=TENANT or ADDRESS=TENANT entries.
	SMTPTenants         []string
	SMTPHostname        string
	SMTPMaxMessageBytes int64
	SMTPMaxRecipients   int64
	SMTPMaxConnections  int64
	SMTPTimeout         time.Duration
	SMTPTLSCertFile     string
	SMTPTLSKeyFile      string

	// VERPPrefix turns on VERP decoding of bounce addresses
	// (PREFIX<sep>user=domain@...); empty: off.
	VERPPrefix    string
	VERPSeparator string

	UnhealthyAfter time.Duration
	LeaseTTL       time.Duration
	// MaxAttempts is how many times a message that fails to be recorded
	// is tried before it is quarantined and the mailbox moves on.
	MaxAttempts int64
}

// IMAPMailbox is one IMAP mailbox's settings.
type IMAPMailbox struct {
	Name         string
	Host         string
	Port         int
	TLS          string // tls, starttls, plain
	AllowPlain   bool
	TLSCAFile    string
	User         string
	Password     string
	Folder       string
	Action       string // move, flag, delete
	MoveTo       string
	Keyword      string
	PollInterval time.Duration
	Idle         bool
	IdleTimeout  time.Duration
	// Tenant binds the mailbox to a tenant: its events are recorded in
	// that tenant's scopes only. Empty for none.
	Tenant string
}

func defaultMailboxes() Mailboxes {
	return Mailboxes{
		MaildirAction:       MaildirActionDefault,
		LMTPSocketMode:      LMTPSocketModeDefault,
		SMTPMaxMessageBytes: SMTPMaxMessageBytesDefault,
		SMTPMaxRecipients:   SMTPMaxRecipientsDefault,
		SMTPMaxConnections:  SMTPMaxConnectionsDefault,
		SMTPTimeout:         SMTPTimeoutDefault,
		VERPSeparator:       VERPSeparatorDefault,
		UnhealthyAfter:      MailboxUnhealthyAfterDefault,
		LeaseTTL:            MailboxLeaseTTLDefault,
		MaxAttempts:         MailboxMaxAttemptsDefault,
	}
}

func (m *Mailboxes) options() []option {
	return []option{
		listOpt("imap-mailboxes", "BOUNCED_IMAP_MAILBOXES", "IMAP mailbox names; each is set with BOUNCED_IMAP_<NAME>_HOST, _USER, _PASSWORD(_FILE), ...", &m.IMAPNames),
		listOpt("maildir", "BOUNCED_MAILDIR", "Maildir paths to watch", &m.Maildirs),
		listOpt("maildir-tenants", "BOUNCED_MAILDIR_TENANTS", "PATH=TENANT: the events of the Maildir at PATH belong to TENANT", &m.MaildirTenants),
		strOpt("maildir-action", "BOUNCED_MAILDIR_ACTION", "after commit: seen (new/ to cur/), move (to a Maildir++ folder) or delete", &m.MaildirAction),
		strOpt("maildir-move-to", "BOUNCED_MAILDIR_MOVE_TO", "Maildir++ folder for the move action (default Processed)", &m.MaildirMoveTo),
		durOpt("maildir-poll-interval", "BOUNCED_MAILDIR_POLL_INTERVAL", "rescan interval besides file notifications (default 30s)", &m.MaildirPollInterval),
		strOpt("smtp-listen", "BOUNCED_SMTP_LISTEN", "SMTP receiver address, e.g. :25; empty: off", &m.SMTPListen),
		strOpt("lmtp-socket", "BOUNCED_LMTP_SOCKET", "LMTP receiver unix socket path; empty: off", &m.LMTPSocket),
		strOpt("lmtp-socket-mode", "BOUNCED_LMTP_SOCKET_MODE", "permissions of the LMTP socket (octal)", &m.LMTPSocketMode),
		listOpt("smtp-domains", "BOUNCED_SMTP_DOMAINS", "domains the SMTP/LMTP receiver accepts mail for", &m.SMTPDomains),
		listOpt("smtp-addresses", "BOUNCED_SMTP_ADDRESSES", "single addresses the SMTP/LMTP receiver accepts mail for", &m.SMTPAddresses),
		listOpt("smtp-tenants", "BOUNCED_SMTP_TENANTS", "DOMAIN=TENANT or ADDRESS=TENANT: bounces received for that domain or address belong to TENANT", &m.SMTPTenants),
		strOpt("smtp-hostname", "BOUNCED_SMTP_HOSTNAME", "name in the SMTP greeting (default: the host name)", &m.SMTPHostname),
		intOpt("smtp-max-message-bytes", "BOUNCED_SMTP_MAX_MESSAGE_BYTES", "largest message accepted by SMTP/LMTP", &m.SMTPMaxMessageBytes),
		intOpt("smtp-max-recipients", "BOUNCED_SMTP_MAX_RECIPIENTS", "recipients accepted per message", &m.SMTPMaxRecipients),
		intOpt("smtp-max-connections", "BOUNCED_SMTP_MAX_CONNECTIONS", "concurrent SMTP/LMTP connections per receiver", &m.SMTPMaxConnections),
		durOpt("smtp-timeout", "BOUNCED_SMTP_TIMEOUT", "SMTP/LMTP read and write timeout", &m.SMTPTimeout),
		strOpt("smtp-tls-cert-file", "BOUNCED_SMTP_TLS_CERT_FILE", "PEM certificate: offers STARTTLS", &m.SMTPTLSCertFile),
		strOpt("smtp-tls-key-file", "BOUNCED_SMTP_TLS_KEY_FILE", "PEM private key of the certificate", &m.SMTPTLSKeyFile),
		strOpt("verp-prefix", "BOUNCED_VERP_PREFIX", "local-part prefix of VERP bounce addresses (e.g. bounces); empty: VERP off", &m.VERPPrefix),
		strOpt("verp-separator", "BOUNCED_VERP_SEPARATOR", "character after the VERP prefix: + or -", &m.VERPSeparator),
		durOpt("mailbox-unhealthy-after", "BOUNCED_MAILBOX_UNHEALTHY_AFTER", "how long a mailbox may fail before /readyz reports it", &m.UnhealthyAfter),
		durOpt("mailbox-lease-ttl", "BOUNCED_MAILBOX_LEASE_TTL", "how soon another replica takes over a mailbox whose reader died", &m.LeaseTTL),
		intOpt("mailbox-max-attempts", "BOUNCED_MAILBOX_MAX_ATTEMPTS", "tries at recording a message before it is quarantined and the mailbox moves on", &m.MaxAttempts),
	}
}

// The name patterns are compiled when first used: at package start they
// cost every command, `bounced parse` included, a millisecond.
var mailboxName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`) })

// envName is the variable prefix of a mailbox: BOUNCED_IMAP_<NAME>_.
func envName(name string) string {
	return "BOUNCED_IMAP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_"
}

// loadIMAP reads the settings of each named IMAP mailbox.
func (m *Mailboxes) loadIMAP(getenv func(string) string) error {
	seen := map[string]bool{}
	m.IMAP = nil
	for _, name := range m.IMAPNames {
		if !mailboxName().MatchString(name) {
			return fmt.Errorf("config: BOUNCED_IMAP_MAILBOXES: %q is not a mailbox name (lower-case letters, digits, - and _)", name)
		}
		if seen[envName(name)] {
			return fmt.Errorf("config: BOUNCED_IMAP_MAILBOXES: %q is named twice", name)
		}
		seen[envName(name)] = true
		mb := IMAPMailbox{Name: name, TLS: "tls", Folder: "INBOX", Action: "move", Idle: true}
		p := envName(name)
		opts := []option{
			strOpt("", p+"HOST", "", &mb.Host),
			strOpt("", p+"TLS", "", &mb.TLS),
			strOpt("", p+"TLS_CA_FILE", "", &mb.TLSCAFile),
			strOpt("", p+"USER", "", &mb.User),
			secretOpt("", p+"PASSWORD", "", &mb.Password),
			strOpt("", p+"FOLDER", "", &mb.Folder),
			strOpt("", p+"ACTION", "", &mb.Action),
			strOpt("", p+"MOVE_TO", "", &mb.MoveTo),
			strOpt("", p+"KEYWORD", "", &mb.Keyword),
			strOpt("", p+"TENANT", "", &mb.Tenant),
			durOpt("", p+"POLL_INTERVAL", "", &mb.PollInterval),
			durOpt("", p+"IDLE_TIMEOUT", "", &mb.IdleTimeout),
			intPtrOpt(p+"PORT", &mb.Port),
			boolOpt(p+"IDLE", &mb.Idle),
			boolOpt(p+"ALLOW_PLAIN", &mb.AllowPlain),
		}
		for _, o := range opts {
			v, err := fromEnv(getenv, o)
			if err != nil {
				return err
			}
			if v == "" {
				continue
			}
			if err := o.set(v); err != nil {
				return fmt.Errorf("config: %s: %w", o.env, err)
			}
		}
		m.IMAP = append(m.IMAP, mb)
	}
	return nil
}

// validate names the first bad mailbox setting.
func (m Mailboxes) validate() error {
	for _, mb := range m.IMAP {
		p := envName(mb.Name)
		switch {
		case mb.Host == "":
			return fmt.Errorf("config: %sHOST: empty", p)
		case mb.User == "":
			return fmt.Errorf("config: %sUSER: empty", p)
		case mb.Password == "":
			return fmt.Errorf("config: %sPASSWORD: empty (or set %sPASSWORD_FILE)", p, p)
		case mb.TLS != "tls" && mb.TLS != "starttls" && mb.TLS != "plain":
			return fmt.Errorf("config: %sTLS: %q is not tls, starttls or plain", p, mb.TLS)
		case mb.Action != "move" && mb.Action != "flag" && mb.Action != "delete":
			return fmt.Errorf("config: %sACTION: %q is not move, flag or delete", p, mb.Action)
		case mb.Port < 0 || mb.Port > 65535:
			return fmt.Errorf("config: %sPORT: %d is not a TCP port", p, mb.Port)
		case mb.PollInterval < 0 || mb.IdleTimeout < 0:
			return fmt.Errorf("config: %sPOLL_INTERVAL and IDLE_TIMEOUT must not be negative", p)
		case mb.Tenant != "" && !ValidTenant(mb.Tenant):
			return fmt.Errorf("config: %sTENANT: %q is not a tenant name (1-63 of a-z 0-9 . _ -)", p, mb.Tenant)
		}
	}
	switch m.MaildirAction {
	case "seen", "move", "delete":
	default:
		return fmt.Errorf("config: maildir-action: %q is not seen, move or delete", m.MaildirAction)
	}
	if (m.SMTPListen != "" || m.LMTPSocket != "") && len(m.SMTPDomains) == 0 && len(m.SMTPAddresses) == 0 {
		return errors.New("config: smtp-domains: the SMTP/LMTP receiver needs the domains (or smtp-addresses) it accepts mail for")
	}
	if _, err := m.MaildirTenantMap(); err != nil {
		return err
	}
	if _, err := m.SMTPTenantMap(); err != nil {
		return err
	}
	if (m.SMTPTLSCertFile == "") != (m.SMTPTLSKeyFile == "") {
		return errors.New("config: smtp-tls-cert-file and smtp-tls-key-file go together")
	}
	if _, err := m.SocketMode(); err != nil {
		return err
	}
	if m.VERPSeparator != "+" && m.VERPSeparator != "-" {
		return fmt.Errorf("config: verp-separator: %q is not + or -", m.VERPSeparator)
	}
	switch {
	case m.SMTPMaxMessageBytes < 1024:
		return fmt.Errorf("config: smtp-max-message-bytes: %d is below 1024", m.SMTPMaxMessageBytes)
	case m.SMTPMaxRecipients < 1 || m.SMTPMaxConnections < 1:
		return errors.New("config: smtp-max-recipients and smtp-max-connections must be at least 1")
	case m.SMTPTimeout <= 0 || m.UnhealthyAfter <= 0 || m.LeaseTTL < time.Second:
		return errors.New("config: smtp-timeout and mailbox-unhealthy-after must be positive, mailbox-lease-ttl at least 1s")
	case m.MaildirPollInterval < 0:
		return errors.New("config: maildir-poll-interval must not be negative")
	case m.MaxAttempts < 1 || m.MaxAttempts > 1000:
		return fmt.Errorf("config: mailbox-max-attempts: %d is not between 1 and 1000", m.MaxAttempts)
	}
	return nil
}

// SocketMode returns LMTPSocketMode as file permissions.
func (m Mailboxes) SocketMode() (os.FileMode, error) {
	mode, err := strconv.ParseUint(m.LMTPSocketMode, 8, 32)
	if err != nil || mode > 0o777 {
		return 0, fmt.Errorf("config: lmtp-socket-mode: %q is not an octal mode such as 0660", m.LMTPSocketMode)
	}
	return os.FileMode(mode), nil
}

// imapString lists the IMAP mailboxes' settings, passwords masked.
func (m Mailboxes) imapString() string {
	var b strings.Builder
	for _, mb := range m.IMAP {
		p := envName(mb.Name)
		pw := ""
		if mb.Password != "" {
			pw = "********"
		}
		fmt.Fprintf(&b, "%sHOST=%s\n%sPORT=%d\n%sTLS=%s\n%sUSER=%s\n%sPASSWORD=%s\n%sFOLDER=%s\n%sACTION=%s\n",
			p, mb.Host, p, mb.Port, p, mb.TLS, p, mb.User, p, pw, p, mb.Folder, p, mb.Action)
		if mb.Tenant != "" {
			fmt.Fprintf(&b, "%sTENANT=%s\n", p, mb.Tenant)
		}
	}
	return b.String()
}

func listOpt(name, env, usage string, p *[]string) option {
	return option{flag: name, env: env, usage: usage + " (comma-separated)",
		set: func(s string) error {
			*p = nil
			for v := range strings.SplitSeq(s, ",") {
				if v = strings.TrimSpace(v); v != "" {
					*p = append(*p, v)
				}
			}
			return nil
		},
		get: func() string { return strings.Join(*p, ",") }}
}

func intPtrOpt(env string, p *int) option {
	return option{env: env,
		set: func(s string) error {
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%q is not a number", s)
			}
			*p = n
			return nil
		},
		get: func() string { return strconv.Itoa(*p) }}
}

func boolOpt(env string, p *bool) option {
	return option{env: env,
		set: func(s string) error {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return fmt.Errorf("%q is not true or false", s)
			}
			*p = b
			return nil
		},
		get: func() string { return strconv.FormatBool(*p) }}
}

var tenantName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`) })

// ValidTenant reports whether t can name a tenant: 1 to 63 of a-z, 0-9,
// '.', '_' and '-', starting with a letter or digit (as store.ValidTenant).
func ValidTenant(t string) bool { return tenantName().MatchString(t) }

// bindings reads KEY=TENANT entries (the last '=' separates them) into a
// map, refusing a bad tenant, an empty or repeated key.
func bindings(setting string, entries []string, key func(string) string) (map[string]string, error) {
	out := map[string]string{}
	for _, e := range entries {
		i := strings.LastIndexByte(e, '=')
		if i < 0 {
			return nil, fmt.Errorf("config: %s: %q is not KEY=TENANT", setting, e)
		}
		k, t := key(strings.TrimSpace(e[:i])), strings.TrimSpace(e[i+1:])
		switch {
		case k == "":
			return nil, fmt.Errorf("config: %s: %q names nothing before =", setting, e)
		case !ValidTenant(t):
			return nil, fmt.Errorf("config: %s: %q is not a tenant name (1-63 of a-z 0-9 . _ -)", setting, t)
		case out[k] != "":
			return nil, fmt.Errorf("config: %s: %q is bound twice", setting, k)
		}
		out[k] = t
	}
	return out, nil
}

// MaildirTenantMap returns MaildirTenants by path; every path must be one
// of Maildirs.
func (m Mailboxes) MaildirTenantMap() (map[string]string, error) {
	out, err := bindings("maildir-tenants", m.MaildirTenants, func(s string) string { return s })
	if err != nil {
		return nil, err
	}
	for path := range out {
		if !slices.Contains(m.Maildirs, path) {
			return nil, fmt.Errorf("config: maildir-tenants: %q is not one of the Maildirs (maildir)", path)
		}
	}
	return out, nil
}

// SMTPTenantMap returns SMTPTenants by lower-cased domain or address;
// each must be one the receiver accepts mail for (smtp-domains,
// smtp-addresses, or an address at one of the domains).
func (m Mailboxes) SMTPTenantMap() (map[string]string, error) {
	out, err := bindings("smtp-tenants", m.SMTPTenants, strings.ToLower)
	if err != nil {
		return nil, err
	}
	accepted := func(k string) bool {
		for _, d := range m.SMTPDomains {
			if strings.EqualFold(d, k) || strings.HasSuffix(k, "@"+strings.ToLower(d)) {
				return true
			}
		}
		for _, a := range m.SMTPAddresses {
			if strings.EqualFold(a, k) {
				return true
			}
		}
		return false
	}
	for k := range out {
		if !accepted(k) {
			return nil, fmt.Errorf("config: smtp-tenants: %q is not a domain or address the receiver accepts (smtp-domains, smtp-addresses)", k)
		}
	}
	return out, nil
}
