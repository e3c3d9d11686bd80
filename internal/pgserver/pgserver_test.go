package pgserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
)

func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// When root, the server runs as the postgres user, which must reach it.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestStartUseStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(reachableTempDir(t), "pg")
	s, err := Start(ctx, Options{DataDir: dir, Ephemeral: true, Database: "app"})
	if err != nil {
		t.Fatalf("Start() = %v", err)
	}
	conn, err := pgx.Connect(ctx, s.URL(""))
	if err != nil {
		t.Fatalf("connect to %s: %v", s.URL(""), err)
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil || db != "app" {
		t.Errorf("current_database() = %q, %v, want app", db, err)
	}
	conn.Close(ctx)

	// A second bounced on the same data directory is refused.
	if _, err := Start(ctx, Options{DataDir: dir}); !errors.Is(err, ErrInUse) {
		t.Errorf("second Start() = %v, want ErrInUse", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server still running after Stop(): %v", err)
	}
}

// TestOrphanIsStopped covers a bounced killed without stopping its server:
// the next start finds the server running, stops it and starts afresh.
func TestOrphanIsStopped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(reachableTempDir(t), "pg")
	s, err := Start(ctx, Options{DataDir: dir, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	s.releaseLock() // what the kernel does when the process dies
	s2, err := Start(ctx, Options{DataDir: dir, Ephemeral: true})
	if err != nil {
		t.Fatalf("Start() over an orphaned server = %v", err)
	}
	conn, err := pgx.Connect(ctx, s2.URL(""))
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	conn.Close(ctx)
	if err := s2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(s.sockDir)
}

func TestMissingBinaries(t *testing.T) {
	t.Parallel()
	_, err := Start(context.Background(), Options{DataDir: t.TempDir(), BinDir: "/nonexistent"})
	if !errors.Is(err, ErrNoBinaries) {
		t.Errorf("Start() without binaries = %v, want ErrNoBinaries", err)
	}
}
