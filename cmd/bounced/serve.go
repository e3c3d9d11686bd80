package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/net/netutil"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/ingest/webhook"
	"github.com/bounced/bounced/internal/mailboxprovider"
	"github.com/bounced/bounced/internal/mxresolve"
	"github.com/bounced/bounced/internal/pgserver"
	"github.com/bounced/bounced/internal/push"
	"github.com/bounced/bounced/internal/store"
)

// loadConfig reads the settings of a command that takes no arguments
// (serve, migrate); done says it printed its help or failed.
func loadConfig(h help, args []string, getenv func(string) string, stdout, stderr io.Writer) (cfg config.Config, logger *slog.Logger, done bool, err error) {
	cfg, rest, done, err := loadCommand(h, args, getenv, stdout)
	if done {
		return cfg, nil, true, err
	}
	if len(rest) > 0 {
		return cfg, nil, true, usageError{fmt.Sprintf("%s: unexpected argument %q (bounced %s --help)", h.name, rest[0], h.name)}
	}
	return cfg, newLogger(cfg, stderr), false, nil
}

const serveText = `Runs the service: the REST API, the metrics and the provider webhooks on
--listen, the mailboxes configured (IMAP, Maildir, SMTP/LMTP), and without
a database URL a private PostgreSQL in --data-dir. Migrations are applied
at start. Every flag is also a BOUNCED_* variable (shown with each), and
secrets can come from files (BOUNCED_ADMIN_KEY_FILE=...). IMAP mailboxes
are set only by variables (BOUNCED_IMAP_<NAME>_<SETTING>; see README).
`

const migrateText = `Applies the database migrations serve would apply at start, prints what it
did, and exits. Beside a running bounced serve on the private PostgreSQL,
it uses that server.
`

// newLogger returns the configured logger writing to w.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	level, _ := cfg.SlogLevel()
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, hopts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, hopts)
	}
	return slog.New(h)
}

// openDB connects to the configured database, or starts the private one.
// The returned stop function closes everything it opened.
func openDB(ctx context.Context, cfg config.Config, logger *slog.Logger, reg prometheus.Registerer, mx *mxresolve.Resolver) (*store.DB, func(), error) {
	return openDBWith(ctx, cfg, logger, reg, false, mx)
}

// openDBShared is openDB; with share, a private PostgreSQL that a running
// bounced already serves is used through its socket instead of refused
// (for commands such as apikey run beside `bounced serve`).
func openDBShared(ctx context.Context, cfg config.Config, logger *slog.Logger, reg prometheus.Registerer, share bool) (*store.DB, func(), error) {
	return openDBWith(ctx, cfg, logger, reg, share, nil)
}

// openDBWith is openDBShared; mx, when lookups are on, names the mailbox
// providers of recorded events' domains (commands that only read pass
// nil, and their stats still say unknown for unplaced domains).
func openDBWith(ctx context.Context, cfg config.Config, logger *slog.Logger, reg prometheus.Registerer, share bool, mx *mxresolve.Resolver) (*store.DB, func(), error) {
	url := cfg.DatabaseURL
	var pg *pgserver.Server
	if url == "" {
		var err error
		start := time.Now()
		pg, err = pgserver.Start(ctx, pgserver.Options{DataDir: cfg.DataDir + "/postgres", BinDir: cfg.PostgresBinDir, Logger: logger})
		switch {
		case share && errors.Is(err, pgserver.ErrInUse):
			if url, err = pgserver.RunningURL(cfg.DataDir+"/postgres", ""); err != nil {
				return nil, nil, err
			}
		case err != nil:
			return nil, nil, err
		default:
			logger.Info("using private postgres", "data_dir", pg.DataDir(), "startup", time.Since(start).Round(time.Millisecond))
			url = pg.URL("")
		}
	}
	stopPG := func() {
		if pg != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := pg.Stop(ctx); err != nil {
				logger.Error("stopping private postgres", "error", err)
			}
		}
	}
	cacheSize := int(cfg.CheckCacheSize)
	if cacheSize == 0 {
		cacheSize = -1 // off
	}
	opts := store.Options{Logger: logger, Registerer: reg, CheckCacheSize: cacheSize,
		RetentionMonths: int(cfg.RetentionMonths), MaxConns: int32(cfg.DBMaxConns), ChangesRetention: cfg.Outbound.ChangesRetention}
	switch {
	case mx != nil:
		opts.MailboxProviderFunc = mx.Peek
	case cfg.MXLookup == "on":
		opts.MailboxProviderFunc = tableOnly
	}
	db, err := store.Open(ctx, url, opts)
	if err != nil {
		stopPG()
		return nil, nil, err
	}
	return db, func() { db.Close(); stopPG() }, nil
}

// newMXResolver returns the resolver of recipient domains' mailbox
// providers, or nil when BOUNCED_MX_LOOKUP is off.
func newMXResolver(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer,
	save func(context.Context, string, mailboxprovider.Provider) error) (*mxresolve.Resolver, error) {
	if cfg.MXLookup != "on" {
		return nil, nil
	}
	dns := net.DefaultResolver
	if server := cfg.MXResolver; server != "" {
		dns = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}}
	}
	return mxresolve.New(mxresolve.Options{Resolver: dns, Timeout: cfg.MXTimeout, CacheSize: int(cfg.MXCacheSize),
		TTL: cfg.MXCacheTTL, Concurrency: int(cfg.MXConcurrency), SaveFunc: save, Logger: logger, Registerer: reg})
}

// tableOnly places a domain by the built-in table alone, for commands
// that record events without looking MX hosts up: any other domain is
// unknown, as it is to serve until its lookup.
func tableOnly(domain string) mailboxprovider.Provider {
	if p, ok := mailboxprovider.ForDomain(domain); ok {
		return p
	}
	return mailboxprovider.Unknown
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, logger, done, err := loadConfig(serveHelp("serve", serveText), args, getenv, stdout, stderr)
	if done {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bi := buildInformation()
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "bounced", Name: "build_info", Help: "Always 1; labelled with the running version, commit and Go version.",
	}, []string{"version", "commit", "goversion"})
	buildInfo.WithLabelValues(bi.version, bi.commit, bi.goVersion).Set(1)
	reg.MustRegister(buildInfo)

	// Recipient domains' mailbox providers: looked up in the background,
	// each answer stored once the database is open (before Run starts).
	var stored *store.DB
	mx, err := newMXResolver(cfg, logger, reg, func(ctx context.Context, domain string, p mailboxprovider.Provider) error {
		return stored.SaveMailboxProvider(ctx, domain, p)
	})
	if err != nil {
		return err
	}
	db, closeDB, err := openDB(ctx, cfg, logger, reg, mx)
	if err != nil {
		return err
	}
	defer closeDB()
	stored = db
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}
	if mx != nil {
		// The stored answers, so a restart does not count every known
		// domain unknown until it is looked up again.
		known, err := db.MailboxProviders(ctx, int(cfg.MXCacheSize))
		if err != nil {
			return err
		}
		for _, k := range slices.Backward(known) { // the most recent last: the most recently used
			mx.Seed(k.Domain, k.Provider)
		}
	}
	if err := checkExposure(ctx, cfg, db, logger); err != nil {
		return err
	}
	// Webhooks, raw messages posted over HTTP and mailboxes share
	// transactions: one commit for many inputs, each acknowledged only
	// once it has committed. A configured wait of 0 means none (the
	// store's zero means its default). The committer closes last, after
	// the mailboxes and the HTTP server have stopped handing it inputs.
	wait := cfg.GroupCommit.Wait
	if wait == 0 {
		wait = -1
	}
	group, err := store.NewGroupCommitter(db, store.GroupCommitOptions{
		MaxWait: wait, MaxInputs: int(cfg.GroupCommit.MaxInputs), Workers: int(cfg.GroupCommit.Workers),
		Registerer: reg, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer group.Close()
	mail, err := ingest.NewMail(group, ingest.MailOptions{Logger: logger, Registerer: reg, MaxRecipients: int(cfg.MaxRecipientsPerMessage),
		Trust: ingest.Trust(cfg.MailTrust), Sent: db, Lookup: db})
	if err != nil {
		return err
	}
	boxes, err := startMailboxes(ctx, cfg, db, mail, logger, reg)
	if err != nil {
		return err
	}
	// Mailboxes finish the messages in hand and release their leases
	// before the database closes.
	defer func() {
		if err := boxes.stop(cfg.ShutdownTimeout); err != nil {
			logger.Error("stopping mailboxes", "error", err)
		}
	}()
	hooks, err := webhook.New(cfg.Webhooks, group, webhook.Options{Logger: logger, Registerer: reg})
	if err != nil {
		return usageError{err.Error()}
	}
	if names := hooks.Configured(); len(names) > 0 {
		logger.Info("webhooks configured", "providers", strings.Join(names, ","))
	}
	srv, err := api.New(api.Deps{
		Ingester: mail, Webhooks: hooks, Messages: db, Suppressions: db, Events: db, DB: db, Health: boxes.health,
		Bulk: db, Exporter: db, Recipients: db, Stats: db, Policy: db, Keys: db, Quarantine: db,
		Subscriptions: db, Changes: db,
		Logger: logger, Registerer: reg, Gatherer: reg,
	}, api.Options{MaxBodyBytes: cfg.MaxBodyBytes, MaxImportBytes: cfg.MaxImportBytes, Auth: api.AuthMode(cfg.Auth), Exposed: !loopback(cfg.Listen),
		AdminKey: cfg.AdminKey, RateLimit: cfg.RateLimit, RateBurst: int(cfg.RateBurst),
		WebhookMaxBodyBytes: cfg.Webhooks.MaxBodyBytes, WebhookRoutes: webhookRoutes(),
		OutboundAllowPrivate: cfg.Outbound.AllowPrivate, StreamMax: int(cfg.Outbound.StreamMax)})
	if err != nil {
		return err
	}
	// Outbound webhooks: every replica may deliver (deliveries are claimed
	// in the database); the metrics exist whether this one does or not.
	deliverer, err := push.New(db, push.Options{Workers: int(cfg.Outbound.Workers), Timeout: cfg.Outbound.Timeout,
		MaxAttempts: int(cfg.Outbound.MaxAttempts), AllowPrivate: cfg.Outbound.AllowPrivate, Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}
	// Caches and expiry cleanup run until shutdown.
	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	bgDone := make(chan struct{})
	go func() { defer close(bgDone); _ = db.Run(bgCtx) }()
	defer func() { stopBG(); <-bgDone }()
	if mx != nil {
		mxDone := make(chan struct{})
		go func() { defer close(mxDone); _ = mx.Run(bgCtx) }()
		defer func() { stopBG(); <-mxDone }()
	}
	if cfg.Outbound.Workers > 0 {
		// Stopped before the database closes; attempts in flight finish
		// (each bounded by the outbound timeout) and are settled.
		pushCtx, stopPush := context.WithCancel(context.WithoutCancel(ctx))
		pushDone := make(chan struct{})
		go func() { defer close(pushDone); _ = deliverer.Run(pushCtx) }()
		defer func() { stopPush(); <-pushDone }()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Past the cap, connections wait in the listen queue: each open one
	// costs a goroutine and buffers, whoever holds it.
	ln = netutil.LimitListener(ln, int(cfg.MaxConnections))
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for handlers: streams end when it starts.
	httpSrv.RegisterOnShutdown(srv.CloseStreams)
	if cfg.DebugListen != "" {
		stopDebug, err := serveDebug(cfg.DebugListen, logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	fmt.Fprintf(stdout, "bounced %s listening on http://%s\n", version, ln.Addr())
	for _, line := range boxes.listening {
		fmt.Fprintln(stdout, line)
	}
	logger.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: draining requests", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, logger, done, err := loadConfig(help{name: "migrate", text: migrateText, settings: true}, args, getenv, stdout, stderr)
	if done {
		return err
	}
	db, closeDB, err := openDBShared(ctx, cfg, logger, nil, true)
	if err != nil {
		return err
	}
	defer closeDB()
	res, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(res.Applied) == 0 {
		fmt.Fprintf(stdout, "schema is up to date at version %d\n", res.To)
		return nil
	}
	for _, name := range res.Applied {
		fmt.Fprintln(stdout, "applied", name)
	}
	fmt.Fprintf(stdout, "schema migrated from version %d to %d\n", res.From, res.To)
	return nil
}

// ErrOpenExposed refuses to serve an open API beyond this machine.
var ErrOpenExposed = errors.New("refusing to listen beyond loopback with no API key: create one (bounced apikey create), set BOUNCED_ADMIN_KEY, or set BOUNCED_AUTH=off if a proxy authenticates")

// checkExposure says at start whether API keys are required and why. It
// refuses to serve beyond loopback with no key at all: keys are required
// there from the start (and stay required if every key is revoked later),
// so such a server could only answer 401. On loopback, auto mode is open
// until the first key exists.
func checkExposure(ctx context.Context, cfg config.Config, db *store.DB, logger *slog.Logger) error {
	if cfg.Auth == "off" {
		logger.Warn("API authentication is off (BOUNCED_AUTH=off); anyone who reaches the port can change the suppression list")
		return nil
	}
	switch {
	case cfg.AdminKey != "":
		logger.Info("API keys required: an admin key is configured")
		return nil
	case cfg.Auth == "on":
		logger.Info("API keys required (BOUNCED_AUTH=on)")
		return nil
	}
	any, err := db.AnyAPIKeys(ctx)
	if err != nil {
		return err
	}
	switch {
	case !any && !loopback(cfg.Listen):
		return ErrOpenExposed
	case !loopback(cfg.Listen):
		logger.Info("API keys required: the listen address is beyond loopback; they stay required if every key is revoked")
	case any:
		logger.Info("API keys required: a key exists; they stay required if every key is revoked")
	default:
		logger.Warn("no API keys exist: the API is open to local clients until one is created (bounced apikey create); from then on keys are required until bounced restarts")
	}
	return nil
}

// loopback reports whether a listen address only accepts local clients.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveDebug serves Go's profiles (net/http/pprof) on their own listener,
// apart from the API and its route table.
func serveDebug(addr string, logger *slog.Logger) (func(), error) {
	if !loopback(addr) {
		return nil, fmt.Errorf("debug listen: %s is not a loopback address; profiles are not for the network", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	logger.Info("serving profiles", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// webhookRoutes are the webhook providers' routes, from their registry.
func webhookRoutes() []api.WebhookRoute {
	var out []api.WebhookRoute
	for _, r := range webhook.Routes() {
		out = append(out, api.WebhookRoute{Provider: r.Provider, Probe: r.Probe})
	}
	return out
}
