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

// TestRestartKeepsURL: with a SocketDir given, a server stopped and
// started again on the same data answers at the same URL.
func TestRestartKeepsURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := reachableTempDir(t)
	opts := Options{DataDir: filepath.Join(base, "pg"), SocketDir: filepath.Join(base, "sock"), Ephemeral: true}
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	url := s.URL("")
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(opts.SocketDir); err != nil {
		t.Errorf("Stop removed the given socket dir: %v", err)
	}
	if s, err = Start(ctx, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(ctx) //nolint:errcheck
	if s.URL("") != url {
		t.Errorf("URL after restart %q, want %q", s.URL(""), url)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	conn.Close(ctx)
}
