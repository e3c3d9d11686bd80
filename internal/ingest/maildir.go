package ingest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/bounced/bounced/internal/parse"
)

// MaildirAction is what happens to a delivered file once committed.
type MaildirAction string

// Maildir actions.
const (
	MaildirSeen   MaildirAction = "seen"   // new/ -> cur/ with the S flag
	MaildirMove   MaildirAction = "move"   // new/ -> .MoveTo/cur/ (a Maildir++ folder)
	MaildirDelete MaildirAction = "delete" // removed
)

// Maildir defaults.
const (
	MaildirPollIntervalDefault = 30 * time.Second
	MaildirMoveToDefault       = "Processed"
)

// MaildirConfig describes one watched Maildir.
type MaildirConfig struct {
	// Name labels the Maildir in metrics and logs; the path by default.
	Name string
	// Tenant binds the Maildir to a tenant ("" for none): its events are
	// recorded in that tenant's scopes only.
	Tenant string
	Path   string
	Action MaildirAction
	MoveTo string // MaildirMove's Maildir++ folder, without the leading dot
	// PollInterval rescans new/ in case a file notification was missed
	// (or the file system gives none, as NFS does).
	PollInterval    time.Duration
	MaxMessageBytes int64
	BackoffMin      time.Duration
	BackoffMax      time.Duration
	UnhealthyAfter  time.Duration
	VERP            parse.VERP
}

// MaildirDeps are what the Maildir watcher calls.
type MaildirDeps struct {
	Ingester EnvelopeIngester
	Logger   *slog.Logger
	Metrics  *Metrics
	NowFunc  func() time.Time
}

// Maildir watches a Maildir's new/ directory, records each delivered
// file, then moves it to cur/ (or a processed folder) or deletes it. A
// crash between commit and move leaves the file in new/ to be read again;
// the raw sha256 dedupe makes the second read a no-op.
type Maildir struct {
	*monitor
	cfg    MaildirConfig
	deps   MaildirDeps
	logger *slog.Logger
	// skipped remembers files left in new/ (too large, unreadable) so
	// each is reported once.
	skipped map[string]bool
}

// NewMaildir checks cfg and returns a watcher ready to Run.
func NewMaildir(cfg MaildirConfig, deps MaildirDeps) (*Maildir, error) {
	if cfg.Path == "" {
		return nil, errors.New("ingest: maildir: path is empty")
	}
	cfg.Name = cmp.Or(cfg.Name, cfg.Path)
	cfg.Action = cmp.Or(cfg.Action, MaildirSeen)
	cfg.MoveTo = strings.TrimPrefix(cmp.Or(cfg.MoveTo, MaildirMoveToDefault), ".")
	cfg.PollInterval = cmpDur(cfg.PollInterval, MaildirPollIntervalDefault)
	cfg.MaxMessageBytes = cmp.Or(max(cfg.MaxMessageBytes, 0), MaxMessageBytesDefault)
	switch cfg.Action {
	case MaildirSeen, MaildirMove, MaildirDelete:
	default:
		return nil, fmt.Errorf("ingest: maildir %q: action: %q is not seen, move or delete", cfg.Path, cfg.Action)
	}
	if cfg.MoveTo == "" || strings.ContainsAny(cfg.MoveTo, "/\x00") {
		return nil, fmt.Errorf("ingest: maildir %q: move_to: %q is not a folder name", cfg.Path, cfg.MoveTo)
	}
	if deps.Ingester == nil {
		return nil, errors.New("ingest: maildir: Ingester is required")
	}
	logger := cmp.Or(deps.Logger, slog.New(slog.DiscardHandler)).With("component", "ingest.maildir", "mailbox", cfg.Name)
	return &Maildir{
		monitor: newMonitor(cfg.Name, deps.Metrics, deps.NowFunc, cfg.UnhealthyAfter),
		cfg:     cfg,
		deps:    deps,
		logger:  logger,
		skipped: map[string]bool{},
	}, nil
}

// Name returns the Maildir's name.
func (m *Maildir) Name() string { return m.cfg.Name }

// Run watches the Maildir until ctx ends. It creates new/, cur/ and tmp/
// when missing. Failures are retried with backoff, not returned.
func (m *Maildir) Run(ctx context.Context) error {
	defer m.setState(StateStopped)
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(m.cfg.Path, sub), 0o700); err != nil {
			return fmt.Errorf("ingest: maildir: %w", err)
		}
	}
	wake := make(chan struct{}, 1)
	if w, err := fsnotify.NewWatcher(); err != nil {
		m.logger.WarnContext(ctx, "no file notifications; polling only", "error", err)
	} else {
		defer w.Close()
		if err := w.Add(filepath.Join(m.cfg.Path, "new")); err != nil {
			m.logger.WarnContext(ctx, "no file notifications; polling only", "error", err)
		}
		go func() {
			for {
				select {
				case _, ok := <-w.Events:
					if !ok {
						return
					}
					select {
					case wake <- struct{}{}:
					default:
					}
				case err, ok := <-w.Errors:
					if !ok {
						return
					}
					// An overflow loses events; the next rescan finds the files.
					m.logger.WarnContext(ctx, "file notifications", "error", err)
				}
			}
		}()
	}
	bo := newBackoff(m.cfg.BackoffMin, m.cfg.BackoffMax)
	for ctx.Err() == nil {
		m.setState(StateProcessing)
		if err := m.scan(ctx); err != nil {
			m.failed()
			m.setState(StateBackoff)
			wait := bo.next()
			m.logger.WarnContext(ctx, "reading the maildir failed; retrying", "error", err, "retry_in", wait.Round(time.Millisecond))
			sleep(ctx, wait)
			continue
		}
		bo.reset()
		m.succeeded()
		m.setState(StateWatching)
		t := time.NewTimer(m.cfg.PollInterval)
		select {
		case <-wake:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	return nil
}

// scan records and moves every file in new/, oldest name first. A file
// that fails is left for the next pass and the scan moves on to the
// others (the Quarantine ingester sets it aside once it has failed too
// often); an outage of the database stops the scan, leaving the rest for
// the next try.
func (m *Maildir) scan(ctx context.Context) error {
	names, err := listMaildir(filepath.Join(m.cfg.Path, "new"))
	if err != nil {
		return err
	}
	var failed []error
	for _, name := range names {
		if ctx.Err() != nil {
			return nil
		}
		if m.skipped[name] {
			continue
		}
		if err := m.deliver(ctx, name); err != nil {
			if outageError(err) {
				return err
			}
			m.logger.WarnContext(ctx, "message not recorded; moving on, it is tried again on the next pass", "file", name, "error", err)
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d messages not recorded: %w", len(failed), errors.Join(failed...))
	}
	return nil
}

func (m *Maildir) deliver(ctx context.Context, name string) error {
	path := filepath.Join(m.cfg.Path, "new", name)
	raw, err := readCappedFile(path, m.cfg.MaxMessageBytes)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // taken by another reader
	case errors.Is(err, errTooLarge):
		m.skipped[name] = true
		m.count(OutcomeTooLarge)
		m.logger.WarnContext(ctx, "message over the size limit left in new/", "file", name, "limit", m.cfg.MaxMessageBytes)
		return nil
	case err != nil:
		// One unreadable file must not hold up the others.
		m.skipped[name] = true
		m.logger.ErrorContext(ctx, "unreadable message left in new/", "file", name, "error", err)
		return nil
	}
	env := Envelope{Source: "maildir", Provider: m.cfg.Name, VERP: m.cfg.VERP, Tenant: m.cfg.Tenant}
	// The file in hand is finished even when ctx ends meanwhile.
	work, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	out, err := m.deps.Ingester.IngestEnvelope(work, env, raw)
	if err != nil {
		m.count(OutcomeFailed)
		return fmt.Errorf("record %s: %w", name, err)
	}
	m.countOutcome(out)
	m.logger.DebugContext(ctx, "message recorded", "file", name, "message_id", out.Message.ID, "created", out.Created, "events", out.Recorded)
	return m.act(name)
}

// act moves or removes a committed file.
func (m *Maildir) act(name string) error {
	src := filepath.Join(m.cfg.Path, "new", name)
	var err error
	switch m.cfg.Action {
	case MaildirDelete:
		err = os.Remove(src)
	case MaildirMove:
		dir := filepath.Join(m.cfg.Path, "."+m.cfg.MoveTo)
		if err = makeMaildirFolder(dir); err == nil {
			err = os.Rename(src, filepath.Join(dir, "cur", withSeenFlag(name)))
		}
	default:
		err = os.Rename(src, filepath.Join(m.cfg.Path, "cur", withSeenFlag(name)))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil // another reader moved it first
	}
	return err
}

// makeMaildirFolder creates a Maildir++ subfolder.
func makeMaildirFolder(dir string) error {
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "maildirfolder"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// withSeenFlag gives a Maildir file name the S flag in its info part
// (":2,FLAGS", flags in ASCII order).
func withSeenFlag(name string) string {
	base, info, ok := strings.Cut(name, ":2,")
	if !ok {
		return name + ":2,S"
	}
	if strings.ContainsRune(info, 'S') {
		return name
	}
	flags := []rune(info + "S")
	slices.Sort(flags)
	return base + ":2," + string(flags)
}

// listMaildir returns the message files of a Maildir directory (new/ or
// cur/) sorted by name, which starts with the delivery time.
func listMaildir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names, nil
}

var errTooLarge = errors.New("message too large")

func readCappedFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, errTooLarge
	}
	return raw, nil
}
