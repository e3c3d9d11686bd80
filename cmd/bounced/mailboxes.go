package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/api"
	"github.com/bounced/bounced/internal/config"
	"github.com/bounced/bounced/internal/ingest"
	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// mailboxes are the running mailbox ingesters of one serve.
type mailboxes struct {
	health []api.HealthChecker
	// listening says where each receiver listens, for the start banner.
	listening []string
	wg        sync.WaitGroup
	cancel    context.CancelFunc
}

// verpOf returns the configured VERP decoder (zero: off).
func verpOf(m config.Mailboxes) parse.VERP {
	if m.VERPPrefix == "" {
		return parse.VERP{}
	}
	return parse.VERP{Prefix: m.VERPPrefix, Separator: m.VERPSeparator[0]}
}

// startMailboxes builds every configured IMAP mailbox, Maildir and
// SMTP/LMTP receiver and runs each in the background. Receivers bind
// their addresses before it returns, so a port in use fails the start.
func startMailboxes(ctx context.Context, cfg config.Config, db *store.DB, mail *ingest.Mail, logger *slog.Logger, reg prometheus.Registerer) (*mailboxes, error) {
	mc := cfg.Mailboxes
	metrics, err := ingest.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	// A message that keeps failing is set aside, never retried for ever
	// in front of the others.
	guarded, err := ingest.NewQuarantine(mail, db, ingest.QuarantineOptions{MaxAttempts: int(mc.MaxAttempts), Logger: logger})
	if err != nil {
		return nil, err
	}
	verp := verpOf(mc)
	type runner interface {
		api.HealthChecker
		Run(ctx context.Context) error
	}
	var runners []runner
	holder := ingest.NewHolderID()
	for _, mb := range mc.IMAP {
		icfg, err := imapConfig(cfg, mb)
		if err != nil {
			return nil, err
		}
		m, err := ingest.NewIMAP(icfg, ingest.MailboxDeps{
			Ingester: guarded, Leases: db, Checkpoints: db, Logger: logger, Metrics: metrics, Holder: holder,
		})
		if err != nil {
			return nil, err
		}
		runners = append(runners, m)
	}
	maildirTenants, err := mc.MaildirTenantMap()
	if err != nil {
		return nil, err
	}
	smtpTenants, err := mc.SMTPTenantMap()
	if err != nil {
		return nil, err
	}
	for _, path := range mc.Maildirs {
		w, err := ingest.NewMaildir(ingest.MaildirConfig{
			Path: path, Tenant: maildirTenants[path], Action: ingest.MaildirAction(mc.MaildirAction), MoveTo: mc.MaildirMoveTo,
			PollInterval: mc.MaildirPollInterval, MaxMessageBytes: cfg.MaxBodyBytes,
			UnhealthyAfter: mc.UnhealthyAfter, VERP: verp,
		}, ingest.MaildirDeps{Ingester: guarded, Logger: logger, Metrics: metrics})
		if err != nil {
			return nil, err
		}
		runners = append(runners, w)
	}
	var receivers []*ingest.Receiver
	if mc.SMTPListen != "" || mc.LMTPSocket != "" {
		rcfg := ingest.SMTPConfig{
			Hostname: mc.SMTPHostname, Domains: mc.SMTPDomains, Addresses: mc.SMTPAddresses, Tenants: smtpTenants,
			MaxMessageBytes: mc.SMTPMaxMessageBytes, MaxRecipients: int(mc.SMTPMaxRecipients),
			MaxConnections: int(mc.SMTPMaxConnections), ReadTimeout: mc.SMTPTimeout, WriteTimeout: mc.SMTPTimeout,
			UnhealthyAfter: mc.UnhealthyAfter, VERP: verp,
		}
		if mc.SMTPTLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(mc.SMTPTLSCertFile, mc.SMTPTLSKeyFile)
			if err != nil {
				return nil, fmt.Errorf("config: smtp-tls-cert-file: %w", err)
			}
			rcfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		deps := ingest.SMTPDeps{Ingester: guarded, Logger: logger, Metrics: metrics}
		if mc.SMTPListen != "" {
			smtpCfg := rcfg
			smtpCfg.Name, smtpCfg.Network, smtpCfg.Addr = "smtp", "tcp", mc.SMTPListen
			r, err := ingest.NewReceiver(smtpCfg, deps)
			if err != nil {
				return nil, err
			}
			receivers = append(receivers, r)
		}
		if mc.LMTPSocket != "" {
			mode, _ := mc.SocketMode()
			lmtpCfg := rcfg
			lmtpCfg.Name, lmtpCfg.LMTP, lmtpCfg.Network, lmtpCfg.Addr, lmtpCfg.SocketMode = "lmtp", true, "unix", mc.LMTPSocket, mode
			lmtpCfg.TLSConfig = nil // a local socket
			r, err := ingest.NewReceiver(lmtpCfg, deps)
			if err != nil {
				return nil, err
			}
			receivers = append(receivers, r)
		}
	}
	var listening []string
	for _, r := range receivers {
		addr, err := r.Listen()
		if err != nil {
			return nil, err
		}
		listening = append(listening, fmt.Sprintf("bounced %s receiver listening on %s", r.Name(), addr))
	}

	ctx, cancel := context.WithCancel(ctx)
	mbs := &mailboxes{cancel: cancel, listening: listening}
	for _, r := range runners {
		mbs.health = append(mbs.health, r)
		mbs.wg.Go(func() {
			if err := r.Run(ctx); err != nil {
				logger.Error("mailbox stopped", "error", err)
			}
		})
	}
	for _, r := range receivers {
		mbs.health = append(mbs.health, r)
		mbs.wg.Go(func() {
			if err := r.Run(ctx, cfg.ShutdownTimeout); err != nil {
				logger.Error("receiver stopped", "error", err)
			}
		})
	}
	return mbs, nil
}

// imapConfig is the ingester configuration of one configured mailbox.
func imapConfig(cfg config.Config, mb config.IMAPMailbox) (ingest.IMAPConfig, error) {
	mc := cfg.Mailboxes
	icfg := ingest.IMAPConfig{
		Name: mb.Name, Tenant: mb.Tenant, Host: mb.Host, Port: mb.Port, TLS: ingest.TLSMode(mb.TLS), AllowPlain: mb.AllowPlain,
		User: mb.User, Password: mb.Password, Folder: mb.Folder, Action: ingest.Action(mb.Action),
		MoveTo: mb.MoveTo, Keyword: mb.Keyword, PollInterval: mb.PollInterval, DisableIdle: !mb.Idle,
		IdleTimeout: mb.IdleTimeout, MaxMessageBytes: cfg.MaxBodyBytes, LeaseTTL: mc.LeaseTTL,
		UnhealthyAfter: mc.UnhealthyAfter, VERP: verpOf(mc),
	}
	if mb.TLSCAFile != "" {
		pem, err := os.ReadFile(mb.TLSCAFile)
		if err != nil {
			return icfg, fmt.Errorf("config: BOUNCED_IMAP_%s_TLS_CA_FILE: %w", mb.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return icfg, fmt.Errorf("config: BOUNCED_IMAP_%s_TLS_CA_FILE: no PEM certificate in %s", mb.Name, mb.TLSCAFile)
		}
		icfg.TLSConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return icfg, nil
}

// stop ends every mailbox ingester and waits up to timeout for them to
// finish the messages in hand and release their leases.
func (m *mailboxes) stop(timeout time.Duration) error {
	if m == nil {
		return nil
	}
	m.cancel()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(timeout):
		return errors.New("mailboxes did not stop in time")
	}
}
