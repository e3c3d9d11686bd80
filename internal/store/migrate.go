package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/bounced/bounced/migrations"
)

// ErrSchemaTooNew means the database was migrated by a newer bounced.
var ErrSchemaTooNew = errors.New("store: database schema is newer than this bounced knows; upgrade bounced")

// MigrationResult says what Migrate did.
type MigrationResult struct {
	From, To int64
	Applied  []string
}

// Migrate applies every pending migration. It takes a Postgres advisory
// lock so replicas starting together migrate once, and refuses to touch a
// database whose schema is newer than the embedded migrations.
func (db *DB) Migrate(ctx context.Context) (MigrationResult, error) {
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return MigrationResult{}, fmt.Errorf("store: migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(slog.New(slog.DiscardHandler)))
	if err != nil {
		return MigrationResult{}, fmt.Errorf("store: migrate: %w", err)
	}
	current, err := p.GetDBVersion(ctx)
	if err != nil {
		return MigrationResult{}, interpret(fmt.Errorf("migrate: db version: %w", err))
	}
	known := KnownSchemaVersion()
	if current > known {
		return MigrationResult{From: current, To: current}, fmt.Errorf("%w (database at %d, bounced knows %d)", ErrSchemaTooNew, current, known)
	}
	results, err := p.Up(ctx)
	res := MigrationResult{From: current, To: current}
	for _, r := range results {
		res.Applied = append(res.Applied, r.Source.Path)
		res.To = r.Source.Version
	}
	if err != nil {
		return res, fmt.Errorf("store: migrate: %w", err)
	}
	if len(res.Applied) > 0 {
		db.logger.InfoContext(ctx, "migrations applied", "from", res.From, "to", res.To, "count", len(res.Applied))
	}
	return res, nil
}

// KnownSchemaVersion is the newest migration this binary embeds.
func KnownSchemaVersion() int64 {
	entries, _ := migrations.FS.ReadDir(".")
	var newest int64
	for _, e := range entries {
		var v int64
		if _, err := fmt.Sscanf(e.Name(), "%d_", &v); err == nil && v > newest {
			newest = v
		}
	}
	return newest
}

// SchemaVersion returns the newest migration applied to the database (0
// before the first) and the PostgreSQL server's version, without changing
// anything.
func (db *DB) SchemaVersion(ctx context.Context) (schema int64, server string, err error) {
	err = db.read(ctx, func(q *pgxpool.Pool) error {
		var migrated bool
		if err := q.QueryRow(ctx, `SELECT current_setting('server_version'), to_regclass('goose_db_version') IS NOT NULL`).
			Scan(&server, &migrated); err != nil || !migrated {
			return err
		}
		return q.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&schema)
	})
	return schema, server, err
}
