// Package config reads bounced's configuration from BOUNCED_* environment
// variables and command-line flags (flags win), with *_FILE variants for
// secrets so they can come from mounted files.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults.
const (
	ListenDefault          = "127.0.0.1:8025"
	DataDirDefault         = ".bounced"
	MaxBodyBytesDefault    = 10 << 20
	ShutdownTimeoutDefault = 30 * time.Second
	LogLevelDefault        = "info"
	LogFormatDefault       = "text"
	AuthDefault            = "auto"
	MaxImportBytesDefault  = 1 << 30
	CheckCacheSizeDefault  = 500000
	DBMaxConnsDefault      = 20
	MaxConnectionsDefault  = 1024
	// MaxRecipientsPerMessageDefault is ingest.MaxRecipientsDefault.
	MaxRecipientsPerMessageDefault = 200
	MailTrustDefault               = "any"
	AdminKeyMinLen                 = 24
	// MX lookups of recipient domains, for their mailbox providers
	// (the defaults are internal/mxresolve's).
	MXLookupDefault      = "on"
	MXTimeoutDefault     = 2 * time.Second
	MXCacheSizeDefault   = 100_000
	MXCacheTTLDefault    = 24 * time.Hour
	MXConcurrencyDefault = 4
)

// Config is everything bounced can be told.
type Config struct {
	Listen          string
	DatabaseURL     string // empty: run a private PostgreSQL in DataDir
	DataDir         string
	PostgresBinDir  string
	MaxBodyBytes    int64
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string
	// Auth is auto (keys required beyond loopback, or once any exists or
	// AdminKey is set, and never loosened while running), on or off.
	Auth           string
	AdminKey       string  // an admin API token accepted besides the stored keys
	RateLimit      float64 // requests per second per key; 0 unlimited
	RateBurst      int64
	MaxImportBytes int64
	CheckCacheSize int64 // addresses the single check caches; 0 turns the cache off
	// Mailboxes configure IMAP, Maildir and SMTP/LMTP ingestion.
	Mailboxes Mailboxes
	// Webhooks configure the ESP webhook routes, GroupCommit how their
	// requests share transactions.
	Webhooks    Webhooks
	GroupCommit GroupCommit
	// DebugListen serves Go's pprof profiles when set; keep it on loopback.
	DebugListen string
	// RetentionMonths drops events, provider event keys and raw inputs
	// older than that many months (whole monthly partitions); 0 keeps all.
	RetentionMonths int64
	// DBMaxConns caps this process's PostgreSQL connections.
	DBMaxConns int64
	// MaxConnections caps the HTTP connections open at once; more wait
	// to be accepted.
	MaxConnections int64
	// MaxRecipientsPerMessage caps the recipients recorded from one
	// bounce message (mail or POST /v1/messages); the rest are one error.
	MaxRecipientsPerMessage int64
	// MailTrust is any (every bounce received as mail may suppress) or
	// sent (only one about a message reported through POST /v1/sent).
	MailTrust string
	// MXLookup is on (recipient domains' MX hosts are looked up to find
	// their mailbox providers) or off (only the built-in table of the
	// providers' own domains). MXResolver is the DNS server asked
	// (host:port; empty: the system's). Each lookup takes at most
	// MXTimeout, MXConcurrency run at once, and MXCacheSize domains are
	// remembered for MXCacheTTL.
	MXLookup      string
	MXResolver    string
	MXTimeout     time.Duration
	MXCacheSize   int64
	MXCacheTTL    time.Duration
	MXConcurrency int64
	// Outbound tunes outbound webhooks and the stream of changes.
	Outbound Outbound
}

// option binds one setting to its flag and environment variable.
type option struct {
	flag, env, usage string
	secret           bool
	set              func(string) error
	get              func() string
}

func (c *Config) options() []option {
	return append([]option{
		strOpt("listen", "BOUNCED_LISTEN", "HTTP listen address", &c.Listen),
		secretOpt("database-url", "BOUNCED_DATABASE_URL", "PostgreSQL URL; empty starts a private server (also DATABASE_URL)", &c.DatabaseURL),
		strOpt("data-dir", "BOUNCED_DATA_DIR", "directory for the private PostgreSQL", &c.DataDir),
		strOpt("postgres-bin-dir", "BOUNCED_POSTGRES_BIN_DIR", "directory holding initdb and pg_ctl (found automatically when empty)", &c.PostgresBinDir),
		intOpt("max-body-bytes", "BOUNCED_MAX_BODY_BYTES", "largest request body accepted", &c.MaxBodyBytes),
		durOpt("shutdown-timeout", "BOUNCED_SHUTDOWN_TIMEOUT", "how long shutdown waits for in-flight requests", &c.ShutdownTimeout),
		strOpt("log-level", "BOUNCED_LOG_LEVEL", "debug, info, warn or error", &c.LogLevel),
		strOpt("log-format", "BOUNCED_LOG_FORMAT", "text or json", &c.LogFormat),
		strOpt("auth", "BOUNCED_AUTH", "API keys: auto (required beyond loopback, or once a key exists or admin-key is set; never loosened while running), on or off", &c.Auth),
		secretOpt("admin-key", "BOUNCED_ADMIN_KEY", "an admin API token accepted besides the stored keys", &c.AdminKey),
		floatOpt("rate-limit", "BOUNCED_RATE_LIMIT", "requests per second allowed to each API key by default (0: unlimited)", &c.RateLimit),
		intOpt("rate-burst", "BOUNCED_RATE_BURST", "burst allowed above the rate (0: one second's worth)", &c.RateBurst),
		intOpt("max-import-bytes", "BOUNCED_MAX_IMPORT_BYTES", "largest CSV import accepted (streamed)", &c.MaxImportBytes),
		intOpt("check-cache-size", "BOUNCED_CHECK_CACHE_SIZE", "addresses the single check keeps in memory (0: no cache)", &c.CheckCacheSize),
		strOpt("debug-listen", "BOUNCED_DEBUG_LISTEN", "serve /debug/pprof/ on this address (empty: off; keep it on loopback)", &c.DebugListen),
		intOpt("db-max-conns", "BOUNCED_DB_MAX_CONNS", "most PostgreSQL connections this process opens", &c.DBMaxConns),
		intOpt("max-connections", "BOUNCED_MAX_CONNECTIONS", "most HTTP connections open at once; more wait to be accepted", &c.MaxConnections),
		intOpt("max-recipients-per-message", "BOUNCED_MAX_RECIPIENTS_PER_MESSAGE", "most recipients recorded from one bounce message; the rest are one parse error", &c.MaxRecipientsPerMessage),
		strOpt("mail-trust", "BOUNCED_MAIL_TRUST", "bounce mail that may suppress: any, or sent (only about a message reported through /v1/sent)", &c.MailTrust),
		intOpt("retention-months", "BOUNCED_RETENTION_MONTHS", "drop events and raw inputs older than this many months (0: keep everything)", &c.RetentionMonths),
		strOpt("mx-lookup", "BOUNCED_MX_LOOKUP", "look recipient domains' MX hosts up to find their mailbox providers: on, or off (only the built-in table of providers' domains)", &c.MXLookup),
		strOpt("mx-resolver", "BOUNCED_MX_RESOLVER", "DNS server (host:port) asked for MX records (empty: the system's)", &c.MXResolver),
		durOpt("mx-timeout", "BOUNCED_MX_TIMEOUT", "longest one MX lookup may take", &c.MXTimeout),
		intOpt("mx-cache-size", "BOUNCED_MX_CACHE_SIZE", "recipient domains whose mailbox provider is kept in memory", &c.MXCacheSize),
		durOpt("mx-cache-ttl", "BOUNCED_MX_CACHE_TTL", "how long a domain's looked-up mailbox provider is kept (a failed lookup: 5m)", &c.MXCacheTTL),
		intOpt("mx-concurrency", "BOUNCED_MX_CONCURRENCY", "most MX lookups in flight at once", &c.MXConcurrency),
	}, slices.Concat(c.Mailboxes.options(), c.Webhooks.options(), c.GroupCommit.options(), c.Outbound.options())...)
}

// Load builds a Config from defaults, then the environment, then flags in
// args. It returns flag.ErrHelp when args ask for help (usage is written
// to output). webhooks are the webhook providers whose settings are read
// (the webhook package's registry); without them no webhook is configured.
func Load(args []string, getenv func(string) string, output io.Writer, webhooks ...WebhookProvider) (Config, error) {
	c, rest, err := LoadCommand("bounced", args, getenv, output, nil, webhooks...)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("config: unexpected argument %q", rest[0])
	}
	return c, err
}

// New returns the defaults, with the settings of webhooks (see Load).
func New(webhooks ...WebhookProvider) Config {
	return Config{
		Listen:                  ListenDefault,
		DataDir:                 DataDirDefault,
		MaxBodyBytes:            MaxBodyBytesDefault,
		ShutdownTimeout:         ShutdownTimeoutDefault,
		LogLevel:                LogLevelDefault,
		LogFormat:               LogFormatDefault,
		Auth:                    AuthDefault,
		MaxImportBytes:          MaxImportBytesDefault,
		CheckCacheSize:          CheckCacheSizeDefault,
		DBMaxConns:              DBMaxConnsDefault,
		MaxConnections:          MaxConnectionsDefault,
		MaxRecipientsPerMessage: MaxRecipientsPerMessageDefault,
		MailTrust:               MailTrustDefault,
		MXLookup:                MXLookupDefault,
		MXTimeout:               MXTimeoutDefault,
		MXCacheSize:             MXCacheSizeDefault,
		MXCacheTTL:              MXCacheTTLDefault,
		MXConcurrency:           MXConcurrencyDefault,
		Mailboxes:               defaultMailboxes(),
		Webhooks:                defaultWebhooks(webhooks),
		GroupCommit:             defaultGroupCommit(),
		Outbound:                defaultOutbound(),
	}
}

// LoadCommand is Load for a command that takes flags of its own (added by
// extra, which may be nil) and arguments after the flags, returned in rest.
func LoadCommand(name string, args []string, getenv func(string) string, output io.Writer, extra func(*flag.FlagSet), webhooks ...WebhookProvider) (c Config, rest []string, err error) {
	c = New(webhooks...)
	if v := getenv("DATABASE_URL"); v != "" {
		c.DatabaseURL = v
	}
	opts := c.options()
	for _, o := range opts {
		v, err := fromEnv(getenv, o)
		if err != nil {
			return c, nil, err
		}
		if v == "" {
			continue
		}
		if err := o.set(v); err != nil {
			return c, nil, fmt.Errorf("config: %s: %w", o.env, err)
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	registerOptions(fs, opts)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, nil, err
		}
		return c, nil, FlagError{err}
	}
	if err := c.Mailboxes.loadIMAP(getenv); err != nil {
		return c, nil, err
	}
	return c, fs.Args(), c.Validate()
}

// FlagError is LoadCommand's error for a flag it cannot parse (unknown,
// or a bad value), as opposed to a setting that is invalid.
type FlagError struct{ Err error }

func (e FlagError) Error() string { return e.Err.Error() }

func (e FlagError) Unwrap() error { return e.Err }

// RegisterFlags adds a flag for every setting to fs, bound to c: for
// commands that print them in their help. A Config from New or Load has
// its webhook providers' settings; a zero Config has none.
func (c *Config) RegisterFlags(fs *flag.FlagSet) { registerOptions(fs, c.options()) }

func registerOptions(fs *flag.FlagSet, opts []option) {
	for _, o := range opts {
		fs.Func(o.flag, o.usage+" (env "+o.env+")", o.set)
	}
}

// fromEnv reads NAME, or the file named by NAME_FILE for secrets.
func fromEnv(getenv func(string) string, o option) (string, error) {
	v := getenv(o.env)
	if file := getenv(o.env + "_FILE"); file != "" {
		if v != "" {
			return "", fmt.Errorf("config: both %s and %s_FILE are set", o.env, o.env)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("config: %s_FILE: %w", o.env, err)
		}
		v = strings.TrimSpace(string(b))
	}
	return v, nil
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Listen == "":
		return errors.New("config: listen: empty")
	case c.DatabaseURL == "" && c.DataDir == "":
		return errors.New("config: data-dir: empty and no database-url")
	case c.MaxBodyBytes < 1024:
		return fmt.Errorf("config: max-body-bytes: %d is below 1024", c.MaxBodyBytes)
	case c.ShutdownTimeout <= 0:
		return errors.New("config: shutdown-timeout: must be positive")
	case c.Auth != "auto" && c.Auth != "on" && c.Auth != "off":
		return fmt.Errorf("config: auth: %q is not auto, on or off", c.Auth)
	case c.AdminKey != "" && len(c.AdminKey) < AdminKeyMinLen:
		return fmt.Errorf("config: admin-key: shorter than %d characters; use a long random token", AdminKeyMinLen)
	case c.RateLimit < 0 || c.RateBurst < 0:
		return errors.New("config: rate-limit, rate-burst: must not be negative")
	case c.MaxImportBytes < 1024:
		return fmt.Errorf("config: max-import-bytes: %d is below 1024", c.MaxImportBytes)
	case c.CheckCacheSize < 0:
		return errors.New("config: check-cache-size: must not be negative")
	case c.DBMaxConns < 2 || c.DBMaxConns > 1000:
		return fmt.Errorf("config: db-max-conns: %d is not between 2 and 1000", c.DBMaxConns)
	case c.MaxRecipientsPerMessage < 1 || c.MaxRecipientsPerMessage > 100_000:
		return fmt.Errorf("config: max-recipients-per-message: %d is not between 1 and 100000", c.MaxRecipientsPerMessage)
	case c.MailTrust != "any" && c.MailTrust != "sent":
		return fmt.Errorf("config: mail-trust: %q is not any or sent", c.MailTrust)
	case c.MaxConnections < 1 || c.MaxConnections > 1_000_000:
		return fmt.Errorf("config: max-connections: %d is not between 1 and 1000000", c.MaxConnections)
	case c.RetentionMonths < 0 || c.RetentionMonths > 1200:
		return fmt.Errorf("config: retention-months: %d is not between 0 (keep everything) and 1200", c.RetentionMonths)
	case c.MXLookup != "on" && c.MXLookup != "off":
		return fmt.Errorf("config: mx-lookup: %q is not on or off", c.MXLookup)
	case c.MXTimeout <= 0 || c.MXTimeout > time.Minute:
		return fmt.Errorf("config: mx-timeout: %s is not between 0 and 1m", c.MXTimeout)
	case c.MXCacheSize < 1 || c.MXCacheSize > 10_000_000:
		return fmt.Errorf("config: mx-cache-size: %d is not between 1 and 10000000", c.MXCacheSize)
	case c.MXCacheTTL < time.Minute:
		return fmt.Errorf("config: mx-cache-ttl: %s is shorter than 1m", c.MXCacheTTL)
	case c.MXConcurrency < 1 || c.MXConcurrency > 256:
		return fmt.Errorf("config: mx-concurrency: %d is not between 1 and 256", c.MXConcurrency)
	}
	if c.MXResolver != "" {
		if _, port, err := net.SplitHostPort(c.MXResolver); err != nil || port == "" {
			return fmt.Errorf("config: mx-resolver: %q is not host:port", c.MXResolver)
		}
	}
	if _, err := c.SlogLevel(); err != nil {
		return err
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return fmt.Errorf("config: log-format: %q is not text or json", c.LogFormat)
	}
	if err := c.Mailboxes.validate(); err != nil {
		return err
	}
	if err := c.Webhooks.validate(); err != nil {
		return err
	}
	if err := c.GroupCommit.validate(); err != nil {
		return err
	}
	return c.Outbound.validate()
}

// SlogLevel returns the configured log level.
func (c Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("config: log-level: %q is not debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}

// String prints the configuration with secrets masked.
func (c Config) String() string {
	var b strings.Builder
	for _, o := range c.options() {
		v := o.get()
		if o.secret && v != "" {
			v = "********"
		}
		fmt.Fprintf(&b, "%s=%s\n", o.env, v)
	}
	b.WriteString(c.Mailboxes.imapString())
	return b.String()
}

func strOpt(name, env, usage string, p *string) option {
	return option{flag: name, env: env, usage: usage,
		set: func(s string) error { *p = s; return nil },
		get: func() string { return *p }}
}

func secretOpt(name, env, usage string, p *string) option {
	o := strOpt(name, env, usage+"; "+env+"_FILE reads it from a file", p)
	o.secret = true
	return o
}

func intOpt(name, env, usage string, p *int64) option {
	return option{flag: name, env: env, usage: usage,
		set: func(s string) error {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", s)
			}
			*p = n
			return nil
		},
		get: func() string { return strconv.FormatInt(*p, 10) }}
}

func floatOpt(name, env, usage string, p *float64) option {
	return option{flag: name, env: env, usage: usage,
		set: func(s string) error {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", s)
			}
			*p = f
			return nil
		},
		get: func() string { return strconv.FormatFloat(*p, 'g', -1, 64) }}
}

func durOpt(name, env, usage string, p *time.Duration) option {
	return option{flag: name, env: env, usage: usage,
		set: func(s string) error {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("%q is not a duration such as 30s", s)
			}
			*p = d
			return nil
		},
		get: func() string { return p.String() }}
}
