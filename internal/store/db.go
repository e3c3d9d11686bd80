// Package store keeps bounced's data in PostgreSQL: raw inputs, the event
// history, per-recipient state and the suppression list.
//
// Each exported method of DB runs in one transaction through transact,
// which retries serialization failures and deadlocks. Callers never see a
// pgx error: not-found rows become ErrNotFound and unique violations
// ErrConflict.
package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bounced/bounced/internal/mailboxprovider"
)

var (
	// ErrNotFound means the requested row does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable means the database could not be reached.
	ErrUnavailable = errors.New("store: database unavailable")
)

// Defaults for Options.
const (
	MaxConnsDefault = 20
	// ChangesRetentionDefault keeps changes a week: a stream can resume,
	// and a delivery be replayed, from a change that old.
	ChangesRetentionDefault = 7 * 24 * time.Hour
	TransactRetryDefault    = 5
	CheckCacheSizeDefault   = 500000
)

// Options configure Open.
type Options struct {
	MaxConns   int32
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	NowFunc    func() time.Time
	// CheckCacheSize caps the addresses the single check keeps in memory
	// (while Run receives change notifications); 0 takes the default,
	// negative turns the cache off.
	CheckCacheSize int
	// CleanupInterval is how often Run removes expired suppressions.
	CleanupInterval time.Duration
	// RetentionMonths makes Run drop events (and provider event keys and
	// raw inputs) older than that many months; 0 keeps everything.
	RetentionMonths int
	// MaintenanceInterval is how often Run makes events partitions and
	// applies the retention (MaintenanceIntervalDefault when 0).
	MaintenanceInterval time.Duration
	// MailboxProviderFunc names the mailbox provider of a recipient
	// domain for the events metric, without waiting (mxresolve's Peek).
	// Nil means no MX lookups run: the built-in table places the
	// providers' own domains and every other domain is Other; else a
	// domain no stored lookup places is Unknown in stats.
	MailboxProviderFunc func(domain string) mailboxprovider.Provider
	// ChangesRetention is how long Run keeps changes of the suppression
	// lists and their deliveries (ChangesRetentionDefault when 0).
	ChangesRetention time.Duration
}

// DB is bounced's database.
type DB struct {
	pool    *pgxpool.Pool
	logger  *slog.Logger
	now     func() time.Time
	metrics *metrics

	// Caches, coherent across replicas while listening (see Run).
	listening     atomic.Bool
	policy        atomic.Pointer[cachedPolicy]
	policyGen     atomic.Uint64
	cache         *checkCache
	keys          *keyCache
	cleanupEvery  time.Duration
	retention     int
	maintainEvery time.Duration

	mailboxProvider func(domain string) mailboxprovider.Provider
	// changed and deliveriesDue fire when another transaction (of any
	// replica) wrote changes or deliveries, while listening.
	changed, deliveriesDue signal
	// changesRetention is how long changes and deliveries are kept.
	changesRetention time.Duration
}

// signal wakes everyone waiting on it; waiters take its channel, closed
// at the next fire.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
	}
	s.ch = make(chan struct{})
}

// ChangesWritten returns a channel closed when changes are next written
// (by any replica), while Run receives notifications; a reader of changes
// also polls, as notifications may be off.
func (db *DB) ChangesWritten() <-chan struct{} { return db.changed.wait() }

// DeliveriesWritten returns a channel closed when deliveries are next
// written or replayed (by any replica), while Run receives notifications.
func (db *DB) DeliveriesWritten() <-chan struct{} { return db.deliveriesDue.wait() }

// Open connects to the database at url. It does not apply migrations; call
// Migrate first.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: database url: %w", err)
	}
	cfg.MaxConns = max(opts.MaxConns, 0)
	if cfg.MaxConns == 0 {
		cfg.MaxConns = MaxConnsDefault
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	db := &DB{pool: pool, logger: opts.Logger, now: opts.NowFunc, keys: newKeyCache(),
		cleanupEvery: cmp.Or(opts.CleanupInterval, CleanupIntervalDefault),
		retention:    max(opts.RetentionMonths, 0), maintainEvery: cmp.Or(opts.MaintenanceInterval, MaintenanceIntervalDefault),
		mailboxProvider:  opts.MailboxProviderFunc,
		changesRetention: cmp.Or(max(opts.ChangesRetention, 0), ChangesRetentionDefault)}
	if opts.CheckCacheSize >= 0 {
		db.cache = newCheckCache(cmp.Or(opts.CheckCacheSize, CheckCacheSizeDefault))
	}
	if db.logger == nil {
		db.logger = slog.New(slog.DiscardHandler)
	}
	if db.now == nil {
		db.now = time.Now
	}
	db.logger = db.logger.With("component", "store")
	if db.metrics, err = newMetrics(opts.Registerer, pool, db); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// Close closes every connection.
func (db *DB) Close() { db.pool.Close() }

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// transact runs fn in a transaction, retrying serialization failures and
// deadlocks with jittered backoff. fn must have no effects outside tx.
func (db *DB) transact(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.retry(ctx, func() error { return db.transactOnce(ctx, fn) })
}

// retry runs one transaction (attempt), again on a serialization failure
// or a deadlock, with jittered backoff and at most TransactRetryDefault
// times, and interprets its error.
func (db *DB) retry(ctx context.Context, attempt func() error) error {
	var err error
	for n := 0; n < TransactRetryDefault; n++ {
		if n > 0 {
			backoff := time.Duration(1<<n) * time.Millisecond
			select {
			case <-time.After(backoff + rand.N(backoff)):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err = attempt()
		if !retryable(err) {
			return interpret(err)
		}
		db.logger.DebugContext(ctx, "retrying transaction", "attempt", n+1, "error", err)
	}
	return interpret(err)
}

// read runs one read-only statement outside an explicit transaction: a
// single statement is atomic on its own, and skipping BEGIN and COMMIT
// saves two round trips on the hot check path.
func (db *DB) read(ctx context.Context, fn func(q *pgxpool.Pool) error) error {
	return interpret(fn(db.pool))
}

func (db *DB) transactOnce(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func retryable(err error) bool {
	var race raceError
	if errors.As(err, &race) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// interpret turns driver errors into this package's sentinels at its edge.
func interpret(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrBadCursor) || errors.Is(err, ErrBadFilter) ||
		errors.Is(err, ErrVersionMismatch) || errors.Is(err, ErrBadScope) || errors.Is(err, ErrBadKey) || errors.Is(err, ErrBadStats) || errors.Is(err, ErrForbiddenScope) ||
		errors.Is(err, ErrChangeGone) || errors.Is(err, ErrTooManySubscriptions) {
		return err
	}
	var perr *PolicyError
	if errors.As(err, &perr) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if pgErr.Code == "23505" {
			return fmt.Errorf("%w: %s", ErrConflict, pgErr.ConstraintName)
		}
		// Class 08 connection exceptions, 57P0x shutdown: the server is going away.
		if pgErr.Code[:2] == "08" || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03" {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return fmt.Errorf("store: %w", err)
	}
	if pgconn.SafeToRetry(err) || isConnError(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return fmt.Errorf("store: %w", err)
}

func isConnError(err error) bool {
	var connErr *pgconn.ConnectError
	return errors.As(err, &connErr) || pgconn.Timeout(err)
}
