// Package dbtest gives tests a real, migrated PostgreSQL database of their
// own. It uses TEST_DATABASE_URL when set (the role must be allowed to
// create databases) and otherwise starts a throwaway private server from
// the installed binaries, once per test binary.
//
// A test that cannot get a database fails; it never skips.
package dbtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/pgserver"
	"github.com/bounced/bounced/internal/store"
)

var (
	setupOnce sync.Once
	errSetup  error
	adminURL  string
	template  string
	server    *pgserver.Server
	serverDir string
	createMu  sync.Mutex
	counter   atomic.Int64
)

// Main runs the package's tests and then stops the private server, if one
// was started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	teardown()
	os.Exit(code)
}

func setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		adminURL = u
	} else {
		dir, err := os.MkdirTemp("", "bounced-test-pg-")
		if err != nil {
			errSetup = err
			return
		}
		serverDir = dir
		// The server runs as the postgres user when we are root; it must
		// reach its data directory.
		if err := os.Chmod(dir, 0o755); err != nil {
			errSetup = err
			return
		}
		server, err = pgserver.Start(ctx, pgserver.Options{DataDir: dir + "/pg", Ephemeral: true, Database: "postgres"})
		if err != nil {
			errSetup = err
			return
		}
		adminURL = server.URL("postgres")
	}
	template = fmt.Sprintf("bounced_tmpl_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if errSetup = exec(ctx, adminURL, `CREATE DATABASE `+template); errSetup != nil {
		return
	}
	db, err := store.Open(ctx, WithDatabase(adminURL, template), store.Options{MaxConns: 2})
	if err != nil {
		errSetup = err
		return
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		errSetup = err
	}
}

func teardown() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if template != "" && adminURL != "" && server == nil {
		_ = exec(ctx, adminURL, `DROP DATABASE IF EXISTS `+template+` WITH (FORCE)`)
	}
	if server != nil {
		_ = server.Stop(ctx)
		os.RemoveAll(serverDir)
	}
}

// AdminURL returns the URL of the server's maintenance database.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	setupOnce.Do(setup)
	if errSetup != nil {
		tb.Fatalf("dbtest: no PostgreSQL for tests: %v", errSetup)
	}
	return adminURL
}

// URL creates an empty migrated database for this test, dropped when the
// test ends, and returns its connection string.
func URL(tb testing.TB) string {
	tb.Helper()
	admin := AdminURL(tb)
	name := fmt.Sprintf("%s_t%d", template, counter.Add(1))
	ctx := context.Background()
	createMu.Lock()
	err := exec(ctx, admin, `CREATE DATABASE `+name+` TEMPLATE `+template)
	createMu.Unlock()
	if err != nil {
		tb.Fatalf("dbtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		if err := exec(context.Background(), admin, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			tb.Logf("dbtest: drop database %s: %v", name, err)
		}
	})
	return WithDatabase(admin, name)
}

// Open returns a store on a fresh migrated database of this test's own.
func Open(tb testing.TB, opts store.Options) *store.DB {
	tb.Helper()
	db, _ := OpenURL(tb, opts)
	return db
}

// OpenURL is Open that also returns the database's connection string,
// for a test that reads or alters the tables behind the store's back.
func OpenURL(tb testing.TB, opts store.Options) (*store.DB, string) {
	tb.Helper()
	if opts.Logger == nil {
		opts.Logger = Logger(tb)
	}
	url := URL(tb)
	db, err := store.Open(context.Background(), url, opts)
	if err != nil {
		tb.Fatalf("dbtest: open: %v", err)
	}
	tb.Cleanup(db.Close)
	return db, url
}

// WithDatabase returns connection string u pointed at database name.
func WithDatabase(u, name string) string {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		parsed, err := url.Parse(u)
		if err == nil {
			parsed.Path = "/" + name
			return parsed.String()
		}
	}
	return u + " dbname=" + name
}

func exec(ctx context.Context, u, sql string) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// Logger returns a logger that writes to the test's log until the test
// ends, then nowhere (background goroutines may outlive it briefly).
func Logger(tb testing.TB) *slog.Logger {
	w := &tbWriter{tb: tb}
	tb.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct {
	tb   testing.TB
	done atomic.Bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.tb.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// DurableURL starts a PostgreSQL server of the caller's own with fsync on
// (the default durability, unlike the shared test server) and returns the
// URL of a migrated database on it; the server stops when the test or
// benchmark ends. Benchmarks use it: timings without fsync say little.
func DurableURL(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "bounced-durable-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	// The server runs as the postgres user when we are root.
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	s, err := pgserver.Start(ctx, pgserver.Options{DataDir: dir + "/pg", Database: "bounced"})
	if err != nil {
		os.RemoveAll(dir)
		tb.Fatalf("dbtest: durable server: %v", err)
	}
	tb.Cleanup(func() {
		_ = s.Stop(context.Background())
		os.RemoveAll(dir)
	})
	db, err := store.Open(ctx, s.URL(""), store.Options{MaxConns: 2})
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return s.URL("")
}
