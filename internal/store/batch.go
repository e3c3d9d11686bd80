package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/parse"
)

// ErrInvalidInput means an input cannot be stored as given; the error
// names what is wrong.
var ErrInvalidInput = errors.New("store: invalid input")

// BatchResult is what RecordBatch did with one input.
type BatchResult struct {
	Outcome Outcome
	Err     error
}

// RecordBatch records many inputs in one transaction, as if Record had
// been called for each in order: identical bytes are stored once, a
// replayed provider event is recorded once. Result i belongs to input i.
//
// Inputs are checked before the transaction starts, so one bad input
// fails alone. Should the database still refuse the batch for a reason
// that is not an outage, each input is retried in a transaction of its
// own, so one input can never fail its batch-mates. When the database is
// unavailable every result carries ErrUnavailable.
func (db *DB) RecordBatch(ctx context.Context, ins []Input) []BatchResult {
	results := make([]BatchResult, len(ins))
	ps := make([]*prepared, 0, len(ins))
	idx := make([]int, 0, len(ins))
	// The batch is received, and its policy applied, at one time.
	received := db.now()
	for i, in := range ins {
		if err := validateInput(in); err != nil {
			results[i].Err = err
			continue
		}
		p, err := prepare(in, received)
		if err != nil {
			results[i].Err = err
			continue
		}
		ps = append(ps, p)
		idx = append(idx, i)
	}
	if len(ps) == 0 {
		return results
	}
	var recs []recorded
	var err error
	if db.setBased {
		recs, err = db.recordSet(ctx, ps)
	} else {
		err = db.transact(ctx, func(tx pgx.Tx) error {
			recs = make([]recorded, len(ps))
			for i, p := range ps {
				var err error
				if recs[i], err = db.recordTx(ctx, tx, p); err != nil {
					return err
				}
			}
			return nil
		})
	}
	switch {
	case err == nil:
		for j, rec := range recs {
			db.countRecorded(ps[j].in, rec)
			results[idx[j]].Outcome = rec.out
		}
	case len(ps) == 1 || errors.Is(err, ErrUnavailable) || ctx.Err() != nil:
		for _, i := range idx {
			results[i].Err = err
		}
	default:
		db.logger.WarnContext(ctx, "batch refused; recording its inputs one by one", "inputs", len(ps), "error", err)
		for _, i := range idx {
			results[i].Outcome, results[i].Err = db.Record(ctx, ins[i])
		}
	}
	return results
}

// validateInput catches what the schema's CHECK constraints would refuse,
// before it can abort a shared transaction.
func validateInput(in Input) error {
	switch in.Status {
	case ParsePending, ParseParsed, ParseFailed:
	default:
		return fmt.Errorf("%w: parse status %q", ErrInvalidInput, in.Status)
	}
	for i, ev := range in.Events {
		if !ev.Type.Valid() {
			return fmt.Errorf("%w: event %d: type %q", ErrInvalidInput, i, ev.Type)
		}
		switch ev.Class {
		case parse.ClassHard, parse.ClassSoft, parse.ClassSender, parse.ClassComplaint, parse.ClassNone:
		default:
			return fmt.Errorf("%w: event %d: class %q", ErrInvalidInput, i, ev.Class)
		}
	}
	return nil
}
