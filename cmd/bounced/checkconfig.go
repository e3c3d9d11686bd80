package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/store"
)

const checkConfigText = `Reads the configuration as serve does (BOUNCED_* variables, *_FILE
secrets, flags) and prints what is enabled, secrets masked. Then it checks
what serve will need: the database and its schema, API keys when listening
beyond loopback, every listen address, each IMAP mailbox (logs in and
examines the folder read-only), each Maildir, the SMTP certificate and the
webhook keys. It exits 1 when anything is wrong, naming each problem.
Without DATABASE_URL it uses the private PostgreSQL, as serve would.
`

// checkTimeout bounds each network check.
const checkTimeout = 15 * time.Second

// ErrCheckFailed is check-config's answer when a check failed.
var ErrCheckFailed = errors.New("check-config: problems found")

// checker prints one line per check and counts the failures.
type checker struct {
	w        io.Writer
	problems int
}

func (c *checker) ok(what, format string, args ...any) {
	fmt.Fprintf(c.w, "  ok    %s: %s\n", what, fmt.Sprintf(format, args...))
}

func (c *checker) warn(what, format string, args ...any) {
	fmt.Fprintf(c.w, "  warn  %s: %s\n", what, fmt.Sprintf(format, args...))
}

func (c *checker) fail(what string, err error) {
	c.problems++
	fmt.Fprintf(c.w, "  FAIL  %s: %v\n", what, err)
}

func checkConfig(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, rest, err := config.LoadCommand("check-config", args, getenv, io.Discard, nil, webhook.Settings()...)
	if errors.Is(err, flag.ErrHelp) {
		serveHelp("check-config", checkConfigText).write(stdout)
		return nil
	}
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("unexpected argument %q", rest[0])
	}
	c := &checker{w: stdout}
	if err != nil {
		fmt.Fprintln(stdout, "configuration")
		c.fail("configuration", err)
		return fmt.Errorf("%w: the configuration is invalid", ErrCheckFailed)
	}
	printEnabled(stdout, cfg)
	fmt.Fprintln(stdout, "\nchecks")
	c.checkListen("http listen "+cfg.Listen, cfg.Listen, true)
	if cfg.DebugListen != "" {
		if loopback(cfg.DebugListen) {
			c.checkListen("debug listen "+cfg.DebugListen, cfg.DebugListen, false)
		} else {
			c.fail("debug listen", fmt.Errorf("%s is not a loopback address; profiles are not for the network", cfg.DebugListen))
		}
	}
	c.checkDatabase(ctx, cfg, stderr)
	c.checkWebhooks(cfg)
	c.checkMailboxes(ctx, cfg)
	if c.problems > 0 {
		fmt.Fprintf(stdout, "\n%d problem(s) found\n", c.problems)
		return fmt.Errorf("%w: %d", ErrCheckFailed, c.problems)
	}
	fmt.Fprintln(stdout, "\nno problems found")
	return nil
}

// printEnabled lists what the configuration turns on, secrets masked.
func printEnabled(w io.Writer, cfg config.Config) {
	fmt.Fprintf(w, "bounced %s configuration\n", version)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	reach := "loopback only"
	if !loopback(cfg.Listen) {
		reach = "beyond loopback"
	}
	row("http", "%s (%s)", cfg.Listen, reach)
	if cfg.DatabaseURL != "" {
		row("database", "%s", maskURL(cfg.DatabaseURL))
	} else {
		row("database", "private PostgreSQL in %s", filepath.Join(cfg.DataDir, "postgres"))
	}
	admin := "no admin key"
	if cfg.AdminKey != "" {
		admin = "admin key set"
	}
	row("api keys", "auth %s, %s", cfg.Auth, admin)
	if cfg.RateLimit > 0 {
		row("rate limit", "%g requests/s per key", cfg.RateLimit)
	} else {
		row("rate limit", "off")
	}
	row("database pool", "%d connections", cfg.DBMaxConns)
	if cfg.RetentionMonths > 0 {
		row("retention", "%d months of events and raw messages", cfg.RetentionMonths)
	} else {
		row("retention", "keep everything")
	}
	var hooks []string
	var bound map[string][]string
	if r, err := webhook.New(cfg.Webhooks, nil, webhook.Options{}); err == nil {
		hooks, bound = r.Configured(), r.Tenants()
	}
	if len(hooks) == 0 {
		row("webhooks", "none (every /v1/webhooks/ route answers 404)")
	} else {
		row("webhooks", "%s", strings.Join(hooks, ", "))
	}
	for _, name := range hooks {
		if ts := bound[name]; len(ts) > 0 {
			row("webhook "+name, "credentials bound to tenants %s", strings.Join(ts, ", "))
		}
	}
	mc := cfg.Mailboxes
	for _, mb := range mc.IMAP {
		then := mb.Action
		if mb.Action == "move" {
			then = "move to " + cmp.Or(mb.MoveTo, ingest.IMAPMoveToDefault)
		}
		port := ""
		if mb.Port != 0 {
			port = fmt.Sprintf(":%d", mb.Port)
		}
		row("imap "+mb.Name, "%s@%s%s (%s), folder %s, then %s; password %s", mb.User, mb.Host, port, mb.TLS, mb.Folder, then, masked(mb.Password))
	}
	for _, path := range mc.Maildirs {
		row("maildir", "%s (then %s)", path, mc.MaildirAction)
	}
	if mc.SMTPListen != "" {
		tlsNote := "no STARTTLS"
		if mc.SMTPTLSCertFile != "" {
			tlsNote = "STARTTLS with " + mc.SMTPTLSCertFile
		}
		row("smtp", "%s, %s", mc.SMTPListen, tlsNote)
	}
	if mc.LMTPSocket != "" {
		row("lmtp", "%s (mode %s)", mc.LMTPSocket, mc.LMTPSocketMode)
	}
	if mc.SMTPListen != "" || mc.LMTPSocket != "" {
		row("accepts mail for", "%s", strings.Join(append(append([]string{}, mc.SMTPDomains...), mc.SMTPAddresses...), ", "))
	}
	if mc.VERPPrefix != "" {
		row("verp", "prefix %s, separator %s", mc.VERPPrefix, mc.VERPSeparator)
	}
	if len(mc.IMAP)+len(mc.Maildirs) == 0 && mc.SMTPListen == "" && mc.LMTPSocket == "" {
		row("mailboxes", "none")
	}
	if cfg.DebugListen != "" {
		row("profiles", "%s", cfg.DebugListen)
	}
	tw.Flush()
}

func masked(secret string) string {
	if secret == "" {
		return "not set"
	}
	return "set"
}

// dsnPassword is compiled when first used, not at the start of every command.
var dsnPassword = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
})

// maskURL hides the password of a PostgreSQL URL or key=value string.
func maskURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return strings.Replace(u.String(), ":xxxxx@", ":*****@", 1)
	}
	return dsnPassword().ReplaceAllString(s, "${1}*****")
}

// checkListen binds addr and lets it go: a port in use, a foreign address
// or a privileged port without the right fails here as it would in serve.
//
// An HTTP address held by a running bounced is fine: check-config is
// often run beside the service it configures.
func (c *checker) checkListen(what, addr string, isHTTP bool) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			if isHTTP && runningBounced(addr) {
				c.ok(what, "in use by a running bounced")
				return
			}
			err = fmt.Errorf("%w (by another program)", err)
		}
		c.fail(what, err)
		return
	}
	ln.Close()
	c.ok(what, "free")
}

// runningBounced reports whether a bounced answers HTTP on addr: its
// /metrics has bounced_build_info.
func runningBounced(addr string) bool {
	base, err := localURL(addr)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return err == nil && resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte("\nbounced_build_info{"))
}

func (c *checker) checkDatabase(ctx context.Context, cfg config.Config, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, 2*checkTimeout)
	defer cancel()
	logger := newLogger(config.Config{LogLevel: "warn", LogFormat: cfg.LogFormat}, stderr)
	db, closeDB, err := openDBShared(ctx, cfg, logger, nil, true)
	if err == nil {
		err = db.Ping(ctx)
	}
	if err != nil {
		c.fail("database", err)
		if closeDB != nil {
			closeDB()
		}
		return
	}
	defer closeDB()
	schema, server, err := db.SchemaVersion(ctx)
	if err != nil {
		c.fail("database", err)
		return
	}
	known := store.KnownSchemaVersion()
	switch {
	case schema > known:
		c.fail("database schema", fmt.Errorf("version %d is newer than this bounced knows (%d): upgrade bounced", schema, known))
	case schema < known:
		c.ok("database", "PostgreSQL %s; schema at version %d, serve migrates it to %d", server, schema, known)
	default:
		c.ok("database", "PostgreSQL %s; schema at version %d (current)", server, schema)
	}
	if schema >= 8 {
		if parts, err := db.EventsPartitions(ctx); err == nil {
			var last string
			for _, p := range parts {
				if !p.Default && !p.To.IsZero() {
					last = p.To.AddDate(0, -1, 0).Format("2006-01")
				}
			}
			c.ok("events partitions", "%d, the last for %s", len(parts), last)
		}
	}
	// API access: open beyond loopback is refused at start.
	switch {
	case cfg.Auth == "off":
		c.warn("api keys", "authentication is off (BOUNCED_AUTH=off): a proxy must authenticate every request")
	case cfg.Auth == "on" || cfg.AdminKey != "":
		c.ok("api keys", "required")
	default:
		anyKey, err := db.AnyAPIKeys(ctx)
		switch {
		case err != nil:
			c.fail("api keys", err)
		case anyKey:
			c.ok("api keys", "required (keys exist)")
		case !loopback(cfg.Listen):
			c.fail("api keys", ErrOpenExposed)
		default:
			c.warn("api keys", "none exist: the API is open to local clients until one is created")
		}
	}
}

func (c *checker) checkWebhooks(cfg config.Config) {
	r, err := webhook.New(cfg.Webhooks, nil, webhook.Options{})
	if err != nil {
		c.fail("webhooks", err)
		return
	}
	if names := r.Configured(); len(names) > 0 {
		c.ok("webhooks", "keys read for %s", strings.Join(names, ", "))
	}
}

func (c *checker) checkMailboxes(ctx context.Context, cfg config.Config) {
	mc := cfg.Mailboxes
	for _, mb := range mc.IMAP {
		what := "imap " + mb.Name
		icfg, err := imapConfig(cfg, mb)
		if err != nil {
			c.fail(what, err)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		res, err := ingest.CheckIMAP(cctx, icfg)
		cancel()
		if err != nil {
			c.fail(what, err)
			continue
		}
		note := ""
		if icfg.Action == ingest.ActionMove && !res.MoveToExists {
			note = fmt.Sprintf("; %s will be created", cmp.Or(icfg.MoveTo, ingest.IMAPMoveToDefault))
		}
		c.ok(what, "logged in as %s; %d messages in %s%s", mb.User, res.Messages, cmp.Or(mb.Folder, ingest.IMAPFolderDefault), note)
	}
	for _, path := range mc.Maildirs {
		what := "maildir " + path
		fi, err := os.Stat(path)
		if err == nil && !fi.IsDir() {
			err = errors.New("not a directory")
		}
		if err != nil {
			c.fail(what, err)
			continue
		}
		entries, err := os.ReadDir(filepath.Join(path, "new"))
		switch {
		case errors.Is(err, os.ErrNotExist):
			c.ok(what, "no new/ yet; serve creates new/, cur/ and tmp/")
		case err != nil:
			c.fail(what, err)
		default:
			c.ok(what, "%d messages waiting in new/", len(entries))
		}
	}
	if mc.SMTPListen != "" {
		c.checkListen("smtp listen "+mc.SMTPListen, mc.SMTPListen, false)
	}
	if mc.SMTPTLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(mc.SMTPTLSCertFile, mc.SMTPTLSKeyFile)
		switch {
		case err != nil:
			c.fail("smtp certificate", err)
		case cert.Leaf != nil && time.Now().After(cert.Leaf.NotAfter):
			c.fail("smtp certificate", fmt.Errorf("expired on %s", cert.Leaf.NotAfter.Format(time.DateOnly)))
		case cert.Leaf != nil:
			c.ok("smtp certificate", "valid until %s", cert.Leaf.NotAfter.Format(time.DateOnly))
		}
	}
	if mc.LMTPSocket != "" {
		c.checkSocket("lmtp socket "+mc.LMTPSocket, mc.LMTPSocket)
	}
}

// checkSocket makes sure serve can create the LMTP socket: its directory
// is writable and nothing listens on it already.
func (c *checker) checkSocket(what, path string) {
	if conn, err := net.DialTimeout("unix", path, time.Second); err == nil {
		conn.Close()
		c.fail(what, errors.New("something already listens on it (is bounced already running?)"))
		return
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".bounced-check-*")
	if err != nil {
		c.fail(what, fmt.Errorf("cannot create the socket there: %w", err))
		return
	}
	f.Close()
	os.Remove(f.Name())
	c.ok(what, "its directory is writable")
}
