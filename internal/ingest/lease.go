package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/bounced/bounced/internal/store"
)

// Leaser hands out one lease per mailbox so a single replica reads it.
// AcquireLease takes or renews a lease and returns store.ErrLeaseLost
// while another holder's lease runs; ReleaseLease gives one up.
type Leaser interface {
	AcquireLease(ctx context.Context, mailbox, holder string, ttl time.Duration) error
	ReleaseLease(ctx context.Context, mailbox, holder string) error
}

var _ Leaser = (*store.DB)(nil)

// LeaseTTLDefault is how long a lease outlives its holder's last renewal:
// after a crash, another replica takes the mailbox over within it.
const LeaseTTLDefault = 30 * time.Second

// NewHolderID returns a name for this process in lease rows: host, pid
// and a random suffix, so two processes never share one.
func NewHolderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// lease holds one mailbox lease for as long as a context runs.
type lease struct {
	leaser  Leaser
	mailbox string
	holder  string
	ttl     time.Duration
	logger  *slog.Logger
}

// wait blocks until the lease is taken, calling onStandby while another
// replica holds it and onError when the database fails. It returns false
// when ctx ends first.
func (l *lease) wait(ctx context.Context, onStandby func(), onError func(error)) bool {
	bo := newBackoff(l.ttl/10, l.ttl)
	for {
		err := l.leaser.AcquireLease(ctx, l.mailbox, l.holder, l.ttl)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		wait := l.ttl / 3
		if errors.Is(err, store.ErrLeaseLost) {
			onStandby()
			bo.reset()
		} else {
			onError(err)
			wait = bo.next()
		}
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// keep renews the lease every ttl/3 and returns a context that ends when
// ctx does or when the lease can no longer be trusted: another holder
// took it, or renewals failed until it may have run out. stop ends the
// renewals and releases the lease.
func (l *lease) keep(ctx context.Context) (held context.Context, stop func()) {
	held, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		validUntil := time.Now().Add(l.ttl)
		tick := time.NewTicker(l.ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-held.Done():
				return
			case <-tick.C:
			}
			start := time.Now()
			err := l.leaser.AcquireLease(held, l.mailbox, l.holder, l.ttl)
			switch {
			case err == nil:
				validUntil = start.Add(l.ttl)
			case errors.Is(err, store.ErrLeaseLost):
				cancel(err)
				return
			case held.Err() != nil:
				return
			default:
				l.logger.WarnContext(ctx, "renewing mailbox lease", "error", err)
				// Stop a little before the lease may lapse, so two
				// replicas never read the mailbox at once.
				if time.Until(validUntil) < l.ttl/3 {
					cancel(fmt.Errorf("%w: renewals failed: %w", store.ErrLeaseLost, err))
					return
				}
			}
		}
	}()
	return held, func() {
		cancel(context.Canceled)
		<-done
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		if err := l.leaser.ReleaseLease(rctx, l.mailbox, l.holder); err != nil {
			l.logger.WarnContext(ctx, "releasing mailbox lease", "error", err)
		}
	}
}
