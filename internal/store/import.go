package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/parse"
)

// SuppressionSource yields valid rows to import, one at a time; the
// caller reads and validates them lazily, so an import streams.
type SuppressionSource interface {
	// Next returns the next row, or false at the end or on a read error
	// (reported by Err).
	Next() (NewSuppression, bool)
	Err() error
}

// ImportResult counts what an import did.
type ImportResult struct {
	Imported int `json:"imported"` // valid rows read (duplicates included)
	Added    int `json:"added"`    // addresses newly suppressed
	Existing int `json:"existing"` // distinct addresses that were already suppressed
}

// ImportSuppressions adds every row of src in one transaction, streaming
// them into PostgreSQL with COPY. Like AddSuppressions, addresses already
// suppressed are left alone, so importing the same file twice adds
// nothing the second time. Rows must carry a manual reason and a
// validated scope ("" for global). It cannot be retried: src is consumed.
func (db *DB) ImportSuppressions(ctx context.Context, src SuppressionSource, actor string) (ImportResult, error) {
	now := db.now()
	var res ImportResult
	var keys []string
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return res, interpret(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	err = func() error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE import_rows (address text, address_key text, domain text,
			scope text, reason text, note text, expires_at timestamptz) ON COMMIT DROP`); err != nil {
			return err
		}
		copySrc := &copySource{src: src}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"import_rows"},
			[]string{"address", "address_key", "domain", "scope", "reason", "note", "expires_at"}, copySrc)
		if serr := src.Err(); serr != nil {
			return serr // the reason COPY was aborted, if it was
		}
		if err != nil {
			return err
		}
		res.Imported = int(n)
		var distinct int
		rows, err := tx.Query(ctx, `
			WITH src AS (
				SELECT DISTINCT ON (scope, address_key) * FROM import_rows ORDER BY scope, address_key
			), `+manualUpsertSQL("'import'", "$1", "$2")+`
			SELECT (SELECT count(*) FROM src),
				(SELECT coalesce(jsonb_agg(jsonb_build_object('reason', reason, 'scope', scope, 'n', n)), '[]')
					FROM (SELECT reason, scope, count(*) AS n FROM up GROUP BY reason, scope) r),
				(SELECT array_agg(address_key) FROM (SELECT address_key FROM up LIMIT $3) k)`, now, actor, notifyFlushOver+1)
		if err != nil {
			return err
		}
		var groups []struct {
			Reason, Scope string
			N             int
		}
		if _, err := pgx.ForEachRow(rows, []any{&distinct, &groups, &keys}, func() error { return nil }); err != nil {
			return err
		}
		for _, g := range groups {
			res.Added += g.N
		}
		res.Existing = distinct - res.Added
		if err := notifyKeys(ctx, tx, keys); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		for _, g := range groups {
			db.metrics.countAdded(g.Reason, g.Scope, g.N)
		}
		return nil
	}()
	if err != nil {
		return ImportResult{}, interpret(fmt.Errorf("import: %w", err))
	}
	db.invalidate(keys...)
	if res.Added >= analyzeAfter {
		// Fresh statistics keep the first checks after a big import on the
		// index instead of waiting for autovacuum to notice.
		if _, err := db.pool.Exec(ctx, `ANALYZE suppressions`); err != nil {
			db.logger.WarnContext(ctx, "analyze after import", "error", err)
		}
	}
	return res, nil
}

// analyzeAfter is the import size past which the list's statistics are
// refreshed at once.
const analyzeAfter = 100000

// copySource adapts a SuppressionSource to COPY.
type copySource struct {
	src  SuppressionSource
	cur  NewSuppression
	vals [7]any
}

func (c *copySource) Next() bool {
	var ok bool
	c.cur, ok = c.src.Next()
	return ok
}

func (c *copySource) Values() ([]any, error) {
	s := c.cur
	scope := s.Scope
	if scope == "" {
		scope = GlobalScope
	}
	var exp any
	if s.ExpiresAt != nil {
		exp = *s.ExpiresAt
	}
	c.vals = [7]any{s.Email, parse.AddressKey(s.Email), parse.AddressDomain(s.Email), scope, string(s.Reason),
		clip(s.Note, 1000), exp}
	return c.vals[:], nil
}

func (c *copySource) Err() error { return c.src.Err() }
