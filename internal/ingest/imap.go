package ingest

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// TLSMode is how an IMAP connection is secured.
type TLSMode string

// TLS modes.
const (
	TLSImplicit TLSMode = "tls"      // TLS from the first byte (port 993)
	TLSStartTLS TLSMode = "starttls" // plain connect, then STARTTLS (port 143)
	TLSPlain    TLSMode = "plain"    // no TLS: loopback only unless AllowPlain
)

// Action is what happens to a message once it is committed.
type Action string

// Actions after commit.
const (
	ActionMove   Action = "move"   // move to MoveTo (created if missing)
	ActionFlag   Action = "flag"   // add \Seen and Keyword
	ActionDelete Action = "delete" // flag \Deleted and expunge
)

// IMAP defaults.
const (
	IMAPFolderDefault       = "INBOX"
	IMAPMoveToDefault       = "Processed"
	IMAPKeywordDefault      = "BouncedProcessed"
	IMAPPollIntervalDefault = time.Minute
	IMAPIdleTimeoutDefault  = 5 * time.Minute
	IMAPBatchSizeDefault    = 50
)

// IMAPConfig describes one mailbox.
type IMAPConfig struct {
	// Name identifies the mailbox in metrics, logs, leases and checkpoints.
	Name string
	// Tenant binds the mailbox to a tenant ("" for none): its events are
	// recorded in that tenant's scopes only.
	Tenant string
	Host   string
	Port   int // 0: 993 with TLSImplicit, else 143
	TLS    TLSMode
	// AllowPlain permits TLSPlain to a host that is not loopback.
	AllowPlain bool
	// TLSConfig overrides the TLS client settings (a private CA, say).
	TLSConfig *tls.Config
	User      string
	Password  string
	Folder    string
	Action    Action
	MoveTo    string // ActionMove's destination
	Keyword   string // ActionFlag's keyword, set with \Seen
	// PollInterval is how often the folder is searched when the server
	// lacks IDLE or DisableIdle is set.
	PollInterval time.Duration
	DisableIdle  bool
	// IdleTimeout ends each IDLE so the folder is searched again even if
	// a notification was lost, and a dead connection is noticed.
	IdleTimeout     time.Duration
	BatchSize       int
	MaxMessageBytes int64
	BackoffMin      time.Duration
	BackoffMax      time.Duration
	LeaseTTL        time.Duration
	UnhealthyAfter  time.Duration
	// VERP decodes the original recipient from the bounce address found
	// in a message's Delivered-To, X-Original-To, Envelope-To or To
	// header. A zero Prefix turns it off.
	VERP parse.VERP
}

// Checkpointer keeps where an IMAP ingester got to. GetCheckpoint
// returns store.ErrNotFound before the first save; SaveCheckpoint returns
// store.ErrLeaseLost when holder no longer holds the mailbox lease.
type Checkpointer interface {
	GetCheckpoint(ctx context.Context, mailbox string) (store.Checkpoint, error)
	SaveCheckpoint(ctx context.Context, mailbox, holder string, cp store.Checkpoint) error
}

var _ Checkpointer = (*store.DB)(nil)

// MailboxDeps are what the IMAP ingester calls.
type MailboxDeps struct {
	Ingester    EnvelopeIngester
	Leases      Leaser
	Checkpoints Checkpointer
	Logger      *slog.Logger
	Metrics     *Metrics
	// Holder names this process in lease rows (NewHolderID by default).
	Holder  string
	NowFunc func() time.Time
}

// IMAP reads one IMAP folder: it records each message, then moves, flags
// or deletes it, and saves a UID checkpoint. Only the replica holding the
// mailbox lease reads it.
type IMAP struct {
	*monitor
	cfg      IMAPConfig
	deps     MailboxDeps
	logger   *slog.Logger
	identity string
	lease    *lease
}

// NewIMAP checks cfg and returns an ingester ready to Run.
func NewIMAP(cfg IMAPConfig, deps MailboxDeps) (*IMAP, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if deps.Ingester == nil || deps.Leases == nil || deps.Checkpoints == nil {
		return nil, errors.New("ingest: imap: Ingester, Leases and Checkpoints are required")
	}
	deps.Holder = cmp.Or(deps.Holder, NewHolderID())
	logger := cmp.Or(deps.Logger, slog.New(slog.DiscardHandler)).With("component", "ingest.imap", "mailbox", cfg.Name)
	m := &IMAP{
		monitor:  newMonitor(cfg.Name, deps.Metrics, deps.NowFunc, cfg.UnhealthyAfter),
		cfg:      cfg,
		deps:     deps,
		logger:   logger,
		identity: fmt.Sprintf("imap://%s@%s/%s", cfg.User, net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), cfg.Folder),
	}
	m.lease = &lease{leaser: deps.Leases, mailbox: "imap:" + cfg.Name, holder: deps.Holder, ttl: cfg.LeaseTTL, logger: logger}
	return m, nil
}

func (cfg IMAPConfig) withDefaults() IMAPConfig {
	cfg.TLS = cmp.Or(cfg.TLS, TLSImplicit)
	if cfg.Port == 0 {
		cfg.Port = 143
		if cfg.TLS == TLSImplicit {
			cfg.Port = 993
		}
	}
	cfg.Folder = cmp.Or(cfg.Folder, IMAPFolderDefault)
	cfg.Action = cmp.Or(cfg.Action, ActionMove)
	cfg.MoveTo = cmp.Or(cfg.MoveTo, IMAPMoveToDefault)
	cfg.Keyword = cmp.Or(cfg.Keyword, IMAPKeywordDefault)
	cfg.PollInterval = cmpDur(cfg.PollInterval, IMAPPollIntervalDefault)
	cfg.IdleTimeout = cmpDur(cfg.IdleTimeout, IMAPIdleTimeoutDefault)
	cfg.LeaseTTL = cmpDur(cfg.LeaseTTL, LeaseTTLDefault)
	cfg.BatchSize = cmp.Or(max(cfg.BatchSize, 0), IMAPBatchSizeDefault)
	cfg.MaxMessageBytes = cmp.Or(max(cfg.MaxMessageBytes, 0), MaxMessageBytesDefault)
	return cfg
}

// dial connects as cfg.TLS says.
func (cfg IMAPConfig) dial(opts *imapclient.Options) (*imapclient.Client, error) {
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	switch cfg.TLS {
	case TLSImplicit:
		return imapclient.DialTLS(addr, opts)
	case TLSStartTLS:
		return imapclient.DialStartTLS(addr, opts)
	default:
		return imapclient.DialInsecure(addr, opts)
	}
}

// IMAPCheck is what CheckIMAP found.
type IMAPCheck struct {
	Messages uint32 // in the folder read
	// MoveToExists says whether ActionMove's destination exists (it is
	// made on first use otherwise).
	MoveToExists bool
}

// CheckIMAP logs in to the mailbox cfg describes and examines its folder
// read-only, changing nothing: for bounced check-config. Its error names
// the step that failed: connect, greeting, login or the folder.
func CheckIMAP(ctx context.Context, cfg IMAPConfig) (IMAPCheck, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return IMAPCheck{}, err
	}
	c, err := cfg.dial(&imapclient.Options{TLSConfig: cfg.TLSConfig, Dialer: &net.Dialer{Timeout: 10 * time.Second}})
	if err != nil {
		return IMAPCheck{}, fmt.Errorf("connect to %s: %w", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), err)
	}
	defer c.Close()
	// The client has no context of its own: closing it ends a hung step.
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer stop()
	if err := c.WaitGreeting(); err != nil {
		return IMAPCheck{}, fmt.Errorf("greeting: %w", err)
	}
	if err := c.Login(cfg.User, cfg.Password).Wait(); err != nil {
		return IMAPCheck{}, fmt.Errorf("login as %s: %w", cfg.User, err)
	}
	sel, err := c.Select(cfg.Folder, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return IMAPCheck{}, fmt.Errorf("folder %q: %w", cfg.Folder, err)
	}
	res := IMAPCheck{Messages: sel.NumMessages}
	if cfg.Action == ActionMove {
		list, err := c.List("", cfg.MoveTo, nil).Collect()
		if err != nil {
			return res, fmt.Errorf("list %q: %w", cfg.MoveTo, err)
		}
		res.MoveToExists = len(list) > 0
	}
	_ = c.Logout().Wait()
	return res, nil
}

func (c IMAPConfig) validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("ingest: imap mailbox %q: %s: %s", c.Name, field, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Name == "":
		return errors.New("ingest: imap: mailbox name is empty")
	case c.Host == "":
		return bad("host", "empty")
	case c.Port < 1 || c.Port > 65535:
		return bad("port", "%d is not a TCP port", c.Port)
	case c.User == "":
		return bad("user", "empty")
	case c.TLS != TLSImplicit && c.TLS != TLSStartTLS && c.TLS != TLSPlain:
		return bad("tls", "%q is not tls, starttls or plain", c.TLS)
	case c.TLS == TLSPlain && !c.AllowPlain && !isLoopback(c.Host):
		return bad("tls", "plain text to %s would send the password in clear; use tls or starttls, or allow plain explicitly", c.Host)
	case c.Action != ActionMove && c.Action != ActionFlag && c.Action != ActionDelete:
		return bad("action", "%q is not move, flag or delete", c.Action)
	case c.Action == ActionMove && c.MoveTo == c.Folder:
		return bad("move_to", "is the folder being read")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Name returns the mailbox name.
func (m *IMAP) Name() string { return m.cfg.Name }

// Run reads the mailbox until ctx ends, then finishes the message in
// hand, logs out and releases the lease. It returns nil after a shutdown;
// failures are retried with backoff, not returned.
func (m *IMAP) Run(ctx context.Context) error {
	defer m.setState(StateStopped)
	for ctx.Err() == nil {
		standby := func() {
			if m.State() != StateStandby {
				m.logger.InfoContext(ctx, "mailbox is read by another replica; standing by")
			}
			m.setState(StateStandby)
			m.healthy()
		}
		failed := func(err error) {
			m.logger.WarnContext(ctx, "taking the mailbox lease", "error", err)
			m.setState(StateBackoff)
			m.failed()
		}
		if !m.lease.wait(ctx, standby, failed) {
			break
		}
		m.logger.InfoContext(ctx, "mailbox lease taken", "holder", m.deps.Holder)
		held, release := m.lease.keep(ctx)
		m.connectLoop(held)
		release()
		if cause := context.Cause(held); ctx.Err() == nil && errors.Is(cause, store.ErrLeaseLost) {
			m.logger.WarnContext(ctx, "mailbox lease lost", "error", cause)
		}
	}
	m.logger.InfoContext(ctx, "mailbox ingester stopped")
	return nil
}

// connectLoop runs sessions with backoff until ctx ends.
func (m *IMAP) connectLoop(ctx context.Context) {
	bo := newBackoff(m.cfg.BackoffMin, m.cfg.BackoffMax)
	for ctx.Err() == nil {
		err := m.session(ctx, bo)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, store.ErrLeaseLost) {
			m.logger.WarnContext(ctx, "mailbox lease lost", "error", err)
			return
		}
		m.failed()
		m.setState(StateBackoff)
		wait := bo.next()
		m.logger.WarnContext(ctx, "mailbox session failed; reconnecting", "error", err, "retry_in", wait.Round(time.Millisecond))
		sleep(ctx, wait)
	}
}

// session is one connection: log in, select, then read and wait for news
// until ctx ends or something fails.
func (m *IMAP) session(ctx context.Context, bo *backoff) error {
	m.setState(StateConnecting)
	news := make(chan struct{}, 1)
	opts := &imapclient.Options{
		TLSConfig: m.cfg.TLSConfig,
		Dialer:    &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second},
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(data *imapclient.UnilateralDataMailbox) {
				if data.NumMessages != nil {
					select {
					case news <- struct{}{}:
					default:
					}
				}
			},
		},
	}
	c, err := m.cfg.dial(opts)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	if err := c.WaitGreeting(); err != nil {
		return fmt.Errorf("greeting: %w", err)
	}
	if err := c.Login(m.cfg.User, m.cfg.Password).Wait(); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	if m.cfg.Action == ActionMove {
		if err := m.ensureFolder(c, m.cfg.MoveTo); err != nil {
			return err
		}
	}
	sel, err := c.Select(m.cfg.Folder, nil).Wait()
	if err != nil {
		return fmt.Errorf("select %q: %w", m.cfg.Folder, err)
	}
	cp, err := m.startingPoint(ctx, sel.UIDValidity)
	if err != nil {
		return err
	}
	idle := !m.cfg.DisableIdle && (c.Caps().Has(imap.CapIdle) || c.Caps().Has(imap.CapIMAP4rev2))
	m.logger.InfoContext(ctx, "mailbox connected", "uid_validity", cp.UIDValidity, "last_uid", cp.LastUID, "idle", idle)
	bo.reset()
	for {
		m.setState(StateProcessing)
		if err := m.readNew(ctx, c, &cp); err != nil {
			return err
		}
		m.succeeded()
		if ctx.Err() != nil {
			m.logout(c)
			return nil
		}
		select {
		case <-news: // news arrived while reading: read again
			continue
		default:
		}
		if idle {
			err = m.idle(ctx, c, news)
		} else {
			err = m.poll(ctx, c, news)
		}
		if err != nil {
			return err
		}
	}
}

// startingPoint returns the checkpoint to read on from: the saved one, or
// UID 0 when none was saved, UIDVALIDITY changed or the name now points
// at another folder. Starting over re-reads the folder; the raw sha256
// dedupe keeps that from recording anything twice.
func (m *IMAP) startingPoint(ctx context.Context, validity uint32) (store.Checkpoint, error) {
	start := store.Checkpoint{Identity: m.identity, UIDValidity: validity}
	saved, err := m.deps.Checkpoints.GetCheckpoint(ctx, m.lease.mailbox)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return start, nil
	case err != nil:
		return start, fmt.Errorf("checkpoint: %w", err)
	case saved.Identity != m.identity:
		m.logger.WarnContext(ctx, "mailbox now names another server or folder; reading the folder from the start")
		return start, nil
	case saved.UIDValidity != validity:
		m.logger.WarnContext(ctx, "UIDVALIDITY changed; reading the folder from the start",
			"old_uid_validity", saved.UIDValidity, "uid_validity", validity)
		return start, nil
	}
	start.LastUID = saved.LastUID
	return start, nil
}

func (m *IMAP) ensureFolder(c *imapclient.Client, name string) error {
	err := c.Create(name, nil).Wait()
	var imapErr *imap.Error
	if err == nil || errors.As(err, &imapErr) && imapErr.Code == imap.ResponseCodeAlreadyExists {
		return nil
	}
	// Servers without the ALREADYEXISTS code: the folder is there if
	// STATUS answers.
	if _, serr := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait(); serr == nil {
		return nil
	}
	return fmt.Errorf("create %q: %w", name, err)
}

// idle waits in IDLE until the server reports news, IdleTimeout passes
// or ctx ends.
func (m *IMAP) idle(ctx context.Context, c *imapclient.Client, news <-chan struct{}) error {
	m.setState(StateIdle)
	cmd, err := c.Idle()
	if err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	t := time.NewTimer(m.cfg.IdleTimeout)
	defer t.Stop()
	select {
	case <-news:
	case <-t.C:
	case <-ctx.Done():
	case <-c.Closed():
	}
	if err := cmd.Close(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("idle: %w", err)
	}
	if ctx.Err() != nil {
		m.logout(c)
	}
	return nil
}

// poll waits PollInterval, then checks the connection with NOOP.
func (m *IMAP) poll(ctx context.Context, c *imapclient.Client, news <-chan struct{}) error {
	m.setState(StatePolling)
	t := time.NewTimer(m.cfg.PollInterval)
	defer t.Stop()
	select {
	case <-t.C:
	case <-news:
	case <-ctx.Done():
		m.logout(c)
		return nil
	case <-c.Closed():
		return errors.New("connection closed by the server")
	}
	if err := c.Noop().Wait(); err != nil {
		return fmt.Errorf("noop: %w", err)
	}
	return nil
}

func (m *IMAP) logout(c *imapclient.Client) {
	if err := c.Logout().Wait(); err != nil {
		m.logger.Debug("logout", "error", err)
	}
}

// readNew records every message after the checkpoint, batch by batch.
// Each batch is committed, then acted on, then checkpointed, so a crash
// anywhere leaves the messages to be read again, never lost; a second
// read is a duplicate the store ignores. It stops between batches when
// ctx ends.
func (m *IMAP) readNew(ctx context.Context, c *imapclient.Client, cp *store.Checkpoint) error {
	criteria := &imap.SearchCriteria{
		UID:     []imap.UIDSet{{imap.UIDRange{Start: imap.UID(cp.LastUID + 1), Stop: 0}}},
		NotFlag: []imap.Flag{imap.FlagDeleted},
	}
	if m.cfg.Action == ActionFlag {
		criteria.NotFlag = append(criteria.NotFlag, imap.Flag(m.cfg.Keyword))
	}
	data, err := c.UIDSearch(criteria, nil).Wait()
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	// "n:*" also matches the highest UID when it is below n.
	uids := slices.DeleteFunc(data.AllUIDs(), func(u imap.UID) bool { return uint32(u) <= cp.LastUID })
	slices.Sort(uids)
	for len(uids) > 0 && ctx.Err() == nil {
		batch := uids[:min(len(uids), m.cfg.BatchSize)]
		uids = uids[len(batch):]
		if err := m.readBatch(ctx, c, cp, batch); err != nil {
			return err
		}
	}
	return nil
}

func (m *IMAP) readBatch(ctx context.Context, c *imapclient.Client, cp *store.Checkpoint, batch []imap.UID) error {
	sizes, err := m.sizes(c, batch)
	if err != nil {
		return err
	}
	var done imap.UID         // every UID up to done is finished
	var committed imap.UIDSet // recorded, to be acted on
	var ingestErr error
	// A message that fails is left in the folder and the batch moves on
	// (the Quarantine ingester sets it aside once it has failed too
	// often); the checkpoint stops before it, so it is read again.
	stuck := false
	finished := func(uid imap.UID) {
		if !stuck {
			done = uid
		}
	}
	for _, uid := range batch {
		if ctx.Err() != nil {
			break // finish what is committed, read no more
		}
		size, ok := sizes[uid]
		if !ok { // expunged meanwhile
			finished(uid)
			continue
		}
		if size > m.cfg.MaxMessageBytes {
			m.count(OutcomeTooLarge)
			m.logger.WarnContext(ctx, "message over the size limit left in the folder", "uid", uid, "size", size, "limit", m.cfg.MaxMessageBytes)
			finished(uid)
			continue
		}
		raw, err := m.fetchBody(c, uid)
		if errors.Is(err, errExpunged) {
			finished(uid)
			continue
		}
		if err != nil {
			ingestErr = err
			break
		}
		env := Envelope{Source: "imap", Provider: m.cfg.Name, VERP: m.cfg.VERP, Tenant: m.cfg.Tenant}
		// Each message has its own time: a slow one cannot use up the
		// others'. The message in hand is finished even when ctx ends.
		msgCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		out, err := m.deps.Ingester.IngestEnvelope(msgCtx, env, raw)
		cancel()
		if err != nil {
			m.count(OutcomeFailed)
			if ingestErr == nil {
				ingestErr = fmt.Errorf("record message: %w", err)
			}
			if outageError(err) {
				break
			}
			m.logger.WarnContext(ctx, "message not recorded; moving on, it is read again later", "uid", uid, "error", err)
			stuck = true
			continue
		}
		m.countOutcome(out)
		m.logger.DebugContext(ctx, "message recorded", "uid", uid, "message_id", out.Message.ID, "created", out.Created, "events", out.Recorded)
		committed.AddNum(uid)
		finished(uid)
	}
	// Messages committed are acted on and checkpointed even when ctx
	// ends meanwhile: shutdown drains, it does not abandon.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if len(committed) > 0 {
		if err := m.act(c, committed); err != nil {
			return err
		}
	}
	if done > 0 {
		next := *cp
		next.LastUID = uint32(done)
		if err := m.deps.Checkpoints.SaveCheckpoint(work, m.lease.mailbox, m.deps.Holder, next); err != nil {
			return fmt.Errorf("save checkpoint: %w", err)
		}
		*cp = next
	}
	return ingestErr
}

// sizes returns the RFC822.SIZE of each UID still in the folder.
func (m *IMAP) sizes(c *imapclient.Client, batch []imap.UID) (map[imap.UID]int64, error) {
	var set imap.UIDSet
	set.AddNum(batch...)
	msgs, err := c.Fetch(set, &imap.FetchOptions{UID: true, RFC822Size: true}).Collect()
	if err != nil {
		return nil, fmt.Errorf("fetch sizes: %w", err)
	}
	sizes := make(map[imap.UID]int64, len(msgs))
	for _, msg := range msgs {
		sizes[msg.UID] = msg.RFC822Size
	}
	return sizes, nil
}

var errExpunged = errors.New("message expunged")

// fetchBody returns a message's bytes without setting \Seen.
func (m *IMAP) fetchBody(c *imapclient.Client, uid imap.UID) ([]byte, error) {
	section := &imap.FetchItemBodySection{Peek: true}
	cmd := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{section}})
	defer cmd.Close()
	var raw []byte
	found := false
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		for item := msg.Next(); item != nil; item = msg.Next() {
			body, ok := item.(imapclient.FetchItemDataBodySection)
			if !ok || body.Literal == nil {
				continue
			}
			b, err := io.ReadAll(io.LimitReader(body.Literal, m.cfg.MaxMessageBytes+1))
			if err != nil {
				return nil, fmt.Errorf("fetch uid %d: %w", uid, err)
			}
			raw, found = b, true
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fmt.Errorf("fetch uid %d: %w", uid, err)
	}
	if !found {
		return nil, errExpunged
	}
	return raw, nil
}

// act moves, flags or deletes committed messages.
func (m *IMAP) act(c *imapclient.Client, uids imap.UIDSet) error {
	switch m.cfg.Action {
	case ActionMove:
		if _, err := c.Move(uids, m.cfg.MoveTo).Wait(); err != nil {
			return fmt.Errorf("move to %q: %w", m.cfg.MoveTo, err)
		}
	case ActionFlag:
		flags := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, imap.Flag(m.cfg.Keyword)}}
		if err := c.Store(uids, flags, nil).Close(); err != nil {
			return fmt.Errorf("flag: %w", err)
		}
	case ActionDelete:
		flags := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
		if err := c.Store(uids, flags, nil).Close(); err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		// Without UIDPLUS, EXPUNGE also removes messages others marked
		// \Deleted in this folder.
		expunge := c.Expunge()
		if c.Caps().Has(imap.CapUIDPlus) || c.Caps().Has(imap.CapIMAP4rev2) {
			expunge = c.UIDExpunge(uids)
		}
		if err := expunge.Close(); err != nil {
			return fmt.Errorf("expunge: %w", err)
		}
	}
	return nil
}
