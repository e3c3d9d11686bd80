package ingest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/bounced/bounced/internal/store"
)

// MaxAttemptsDefault is how many times a mailbox tries to record a message
// before it quarantines it.
const MaxAttemptsDefault = 5

// Attempts keeps count of the messages mailboxes failed to record, where
// every replica and restart sees it. Each method returns
// store.ErrUnavailable when the database is down.
type Attempts interface {
	// StartMailAttempt counts an attempt (unless count is false) and
	// returns the attempts so far, the last failure and whether the
	// message was quarantined before.
	StartMailAttempt(ctx context.Context, mailbox string, sum [32]byte, count bool) (int, string, bool, error)
	// FinishMailAttempt forgets a recorded message (failure "") or keeps
	// why an attempt failed.
	FinishMailAttempt(ctx context.Context, mailbox string, sum [32]byte, failure string) error
	// QuarantineMail stores the message's bytes as a failed input, reads
	// nothing from them, and marks the message quarantined.
	QuarantineMail(ctx context.Context, mailbox string, in store.Input) (store.Outcome, error)
}

var _ Attempts = (*store.DB)(nil)

// QuarantineOptions tune a Quarantine; zero fields take defaults.
type QuarantineOptions struct {
	MaxAttempts int
	Logger      *slog.Logger
}

// Quarantine is the EnvelopeIngester mailboxes use: it records through
// next, and sets aside a message that still fails after MaxAttempts
// tries, so that one message can never stop a mailbox. A quarantined
// message's bytes are stored (parse status failed, no events) and listed
// by GET /v1/quarantine; its Outcome says Quarantined (counted as
// OutcomeQuarantined) and the mailbox acts on it as on a recorded one.
// Failures for an outage of the database are not the message's and are
// not counted.
type Quarantine struct {
	next     EnvelopeIngester
	attempts Attempts
	max      int
	logger   *slog.Logger

	mu sync.Mutex
	// outage holds messages whose last attempt failed for an outage:
	// their next attempt is not counted.
	outage map[[32]byte]bool
}

var _ EnvelopeIngester = (*Quarantine)(nil)

// NewQuarantine wraps next.
func NewQuarantine(next EnvelopeIngester, attempts Attempts, opts QuarantineOptions) (*Quarantine, error) {
	return &Quarantine{
		next: next, attempts: attempts, max: cmp.Or(max(opts.MaxAttempts, 0), MaxAttemptsDefault),
		logger: cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)).With("component", "ingest.quarantine"),
		outage: map[[32]byte]bool{},
	}, nil
}

// outageError reports an error that is not the message's fault: the
// database is down, or the process is stopping.
func outageError(err error) bool {
	return errors.Is(err, context.Canceled) ||
		errors.Is(err, store.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded)
}

// IngestEnvelope implements EnvelopeIngester. The mailbox is
// env.Provider.
func (q *Quarantine) IngestEnvelope(ctx context.Context, env Envelope, raw []byte) (store.Outcome, error) {
	sum := sha256.Sum256(raw)
	q.mu.Lock()
	count := !q.outage[sum]
	delete(q.outage, sum)
	q.mu.Unlock()
	n, lastErr, quarantined, err := q.attempts.StartMailAttempt(ctx, env.Provider, sum, count)
	if err != nil {
		return store.Outcome{}, err
	}
	if quarantined || n > q.max {
		in := store.Input{Source: env.Source, Provider: env.Provider, ContentType: "message/rfc822", Raw: raw,
			Error: fmt.Sprintf("quarantined after %d failed attempts; the last: %s", n-1, lastErr)}
		out, err := q.attempts.QuarantineMail(ctx, env.Provider, in)
		if err != nil {
			return store.Outcome{}, err
		}
		if out.Created {
			q.logger.WarnContext(ctx, "message quarantined: recording it failed too often; its bytes are kept",
				"mailbox", env.Provider, "attempts", n-1, "raw_id", out.Message.ID, "last_error", lastErr)
		}
		return out, nil
	}
	out, err := q.next.IngestEnvelope(ctx, env, raw)
	if err != nil {
		if outageError(err) {
			q.mu.Lock()
			if len(q.outage) >= 10000 {
				clear(q.outage)
			}
			q.outage[sum] = true
			q.mu.Unlock()
			return store.Outcome{}, err
		}
		if ferr := q.attempts.FinishMailAttempt(context.WithoutCancel(ctx), env.Provider, sum, err.Error()); ferr != nil {
			q.logger.WarnContext(ctx, "keeping why a message failed", "mailbox", env.Provider, "error", ferr)
		}
		return store.Outcome{}, err
	}
	if err := q.attempts.FinishMailAttempt(context.WithoutCancel(ctx), env.Provider, sum, ""); err != nil {
		q.logger.WarnContext(ctx, "forgetting the attempts at a recorded message", "mailbox", env.Provider, "error", err)
	}
	return out, nil
}
