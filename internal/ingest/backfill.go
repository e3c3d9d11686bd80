package ingest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bounced/bounced/internal/parse"
	"github.com/bounced/bounced/internal/store"
)

// BackfillOptions tune Backfill.
type BackfillOptions struct {
	// Provider names the import in the stored messages; the base name of
	// the path by default.
	Provider        string
	MaxMessageBytes int64
	VERP            parse.VERP
	// ProgressFunc, when set, is called after each message with the
	// bytes read so far and the total to read.
	ProgressFunc func(done, total int64)
}

// BackfillSummary says what an import did.
type BackfillSummary struct {
	Format     string         `json:"format"`   // maildir or mbox
	Messages   int            `json:"messages"` // read
	Stored     int            `json:"stored"`
	Duplicates int            `json:"duplicates"`
	Unparsed   int            `json:"unparsed"` // stored, but not readable as a report
	TooLarge   int            `json:"too_large"`
	Unreadable int            `json:"unreadable"` // files that could not be read
	Kinds      map[string]int `json:"kinds"`      // messages by kind
	Reasons    map[string]int `json:"reasons"`    // recipients by reason
}

// Backfill imports every message of an existing Maildir (cur/ and new/,
// left as they are) or mbox file at path, once: messages stored before
// are counted as duplicates. It stops at the first store error, returning
// the summary so far.
func Backfill(ctx context.Context, ing EnvelopeIngester, path string, opts BackfillOptions) (BackfillSummary, error) {
	sum := BackfillSummary{Kinds: map[string]int{}, Reasons: map[string]int{}}
	opts.MaxMessageBytes = cmp.Or(max(opts.MaxMessageBytes, 0), MaxMessageBytesDefault)
	opts.Provider = cmp.Or(opts.Provider, filepath.Base(filepath.Clean(path)))
	fi, err := os.Stat(path)
	if err != nil {
		return sum, fmt.Errorf("ingest: backfill: %w", err)
	}
	source := "maildir"
	if fi.IsDir() {
		sum.Format = "maildir"
		err = backfillMaildir(ctx, path, opts, &sum, func(raw []byte) error { return sum.record(ctx, ing, source, opts, raw) })
	} else {
		source, sum.Format = "mbox", "mbox"
		err = backfillMbox(ctx, path, fi.Size(), opts, &sum, func(raw []byte) error { return sum.record(ctx, ing, source, opts, raw) })
	}
	return sum, err
}

func backfillMaildir(ctx context.Context, path string, opts BackfillOptions, sum *BackfillSummary, record func([]byte) error) error {
	var files []string
	var total int64
	for _, sub := range []string{"cur", "new"} {
		dir := filepath.Join(path, sub)
		names, err := listMaildir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("ingest: backfill: %w", err)
		}
		for _, n := range names {
			p := filepath.Join(dir, n)
			if fi, err := os.Stat(p); err == nil {
				total += fi.Size()
			}
			files = append(files, p)
		}
	}
	if _, err := os.Stat(filepath.Join(path, "cur")); err != nil {
		if _, err := os.Stat(filepath.Join(path, "new")); err != nil {
			return fmt.Errorf("ingest: backfill: %s is not a Maildir (no cur/ or new/)", path)
		}
	}
	var done int64
	for _, p := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		raw, err := readCappedFile(p, opts.MaxMessageBytes)
		sum.Messages++
		switch {
		case errors.Is(err, errTooLarge):
			sum.TooLarge++
		case err != nil:
			sum.Unreadable++
		default:
			if err := record(raw); err != nil {
				return err
			}
		}
		if fi, err := os.Stat(p); err == nil {
			done += fi.Size()
		}
		if opts.ProgressFunc != nil {
			opts.ProgressFunc(min(done, total), total)
		}
	}
	return nil
}

func backfillMbox(ctx context.Context, path string, size int64, opts BackfillOptions, sum *BackfillSummary, record func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("ingest: backfill: %w", err)
	}
	defer f.Close()
	r := newMboxReader(f, opts.MaxMessageBytes)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		raw, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, ErrNotMbox) {
			return fmt.Errorf("ingest: backfill: %s: %w", path, err)
		}
		if err != nil && !errors.Is(err, errTooLarge) {
			return fmt.Errorf("ingest: backfill: %s: %w", path, err)
		}
		sum.Messages++
		switch {
		case err != nil:
			sum.TooLarge++
		case len(raw) == 0:
			sum.Unreadable++
		default:
			if err := record(raw); err != nil {
				return err
			}
		}
		if opts.ProgressFunc != nil {
			opts.ProgressFunc(min(r.Consumed(), size), size)
		}
	}
}

// record ingests one message and counts what it was.
func (s *BackfillSummary) record(ctx context.Context, ing EnvelopeIngester, source string, opts BackfillOptions, raw []byte) error {
	env := Envelope{Source: source, Provider: opts.Provider, VERP: opts.VERP}
	out, err := ing.IngestEnvelope(ctx, env, raw)
	if err != nil {
		return fmt.Errorf("ingest: backfill: record message %d: %w", s.Messages, err)
	}
	if out.Created {
		s.Stored++
	} else {
		s.Duplicates++
	}
	if out.Message.ParseStatus == store.ParseFailed {
		s.Unparsed++
	}
	kind := out.Message.Kind
	if kind == "" {
		kind = "unparsed"
	}
	s.Kinds[kind]++
	var result struct {
		Recipients []struct {
			Reason string `json:"reason"`
		} `json:"recipients"`
	}
	if len(out.Message.Result) > 0 && json.Unmarshal(out.Message.Result, &result) == nil {
		for _, r := range result.Recipients {
			s.Reasons[cmp.Or(r.Reason, "none")]++
		}
	}
	return nil
}
