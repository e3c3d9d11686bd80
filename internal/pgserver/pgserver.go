// Package pgserver runs a private PostgreSQL server from the locally
// installed server binaries, for `bounced serve` without a DATABASE_URL and
// for tests without a TEST_DATABASE_URL.
//
// PostgreSQL refuses to run as root, so when bounced runs as root the
// server's commands run as the "postgres" user through runuser(1). The
// server listens only on a unix socket in a private directory.
package pgserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries are found.
var ErrNoBinaries = errors.New("pgserver: PostgreSQL server binaries (initdb, pg_ctl) not found; install them with `apt-get install -y postgresql` or set DATABASE_URL")

// ErrInUse is returned when another process holds the data directory.
var ErrInUse = errors.New("pgserver: data directory is in use by another bounced")

// Options configure Start.
type Options struct {
	// DataDir holds the cluster; it is created and initialised if empty.
	DataDir string
	// BinDir holds initdb and pg_ctl; found on PATH or under
	// /usr/lib/postgresql/*/bin when empty.
	BinDir string
	// Database is created if missing; "bounced" when empty.
	Database string
	// Ephemeral trades durability for speed (fsync off), for tests.
	Ephemeral bool
	// SocketDir holds the server's unix socket. Empty: a private temporary
	// directory, removed by Stop. A given directory is kept, so a server
	// stopped and started again keeps its URL (the fault tests do that).
	SocketDir string
	// Settings are further server settings ("name=value"), passed as -c
	// options at every start (the load tool's measurements use them).
	Settings []string
	Logger   *slog.Logger
}

// Server is a running private PostgreSQL.
type Server struct {
	dataDir  string
	sockDir  string
	binDir   string
	database string
	settings []string
	runAs    *user.User
	lock     *os.File
	logger   *slog.Logger
	ownSock  bool // sockDir was made by Start, and is removed by Stop
}

const socketPort = 5432 // only names the socket file; nothing listens on TCP

// Start initialises the cluster if needed, starts the server and makes
// sure the database exists. Call Stop to shut it down.
func Start(ctx context.Context, opts Options) (_ *Server, err error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	binDir, err := findBinDir(opts.BinDir)
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: data dir: %w", err)
	}
	s := &Server{dataDir: dataDir, binDir: binDir, database: opts.Database, settings: opts.Settings, logger: logger}
	if s.database == "" {
		s.database = "bounced"
	}
	if os.Geteuid() == 0 {
		if s.runAs, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("pgserver: running as root needs a \"postgres\" user to run the server as (apt-get install -y postgresql creates it): %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dataDir), 0o755); err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	if err := s.takeLock(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.releaseLock()
		}
	}()
	if err := s.initIfEmpty(ctx, opts.Ephemeral); err != nil {
		return nil, err
	}
	if err := s.stopOrphan(ctx); err != nil {
		return nil, err
	}
	if opts.SocketDir != "" {
		s.sockDir = opts.SocketDir
		if err := os.MkdirAll(s.sockDir, 0o755); err != nil {
			return nil, fmt.Errorf("pgserver: socket dir: %w", err)
		}
	} else {
		if s.sockDir, err = os.MkdirTemp("", "bounced-pg-"); err != nil {
			return nil, fmt.Errorf("pgserver: socket dir: %w", err)
		}
		s.ownSock = true
	}
	if err := s.chown(s.sockDir); err != nil {
		return nil, err
	}
	if err := s.start(ctx, opts.Ephemeral); err != nil {
		s.removeSocketDir()
		return nil, err
	}
	if err := s.createDatabase(ctx, s.database); err != nil {
		_ = s.Stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

// URL returns a connection string for database name on this server, or for
// the server's default database when name is empty.
func (s *Server) URL(name string) string {
	if name == "" {
		name = s.database
	}
	q := url.Values{"host": {s.sockDir}, "port": {strconv.Itoa(socketPort)}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + url.PathEscape(name) + "?" + q.Encode()
}

// DataDir returns the cluster directory.
func (s *Server) DataDir() string { return s.dataDir }

// BinDir returns the directory of the server binaries in use.
func (s *Server) BinDir() string { return s.binDir }

// PID returns the postmaster's process id, read from its pid file.
func (s *Server) PID() (int, error) {
	b, err := os.ReadFile(filepath.Join(s.dataDir, "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("pgserver: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return 0, fmt.Errorf("pgserver: postmaster.pid: %w", err)
	}
	return pid, nil
}

// Stop shuts the server down (fast mode: sessions are ended, nothing
// committed is lost) and removes the socket directory.
func (s *Server) Stop(ctx context.Context) error {
	defer s.releaseLock()
	defer s.removeSocketDir()
	out, err := s.run(ctx, "pg_ctl", "-D", s.dataDir, "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pgserver: stop: %w: %s", err, out)
	}
	s.logger.Info("private postgres stopped", "data_dir", s.dataDir)
	return nil
}

func (s *Server) removeSocketDir() {
	if s.ownSock {
		os.RemoveAll(s.sockDir)
	}
}

func findBinDir(dir string) (string, error) {
	has := func(d string) bool {
		for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
			if fi, err := os.Stat(filepath.Join(d, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir != "" {
		if has(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("%w in %s", ErrNoBinaries, dir)
	}
	// Prefer the versioned directory: /usr/local/bin may hold only some links.
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(matches, func(i, j int) bool { return versionOf(matches[i]) > versionOf(matches[j]) })
	for _, m := range matches {
		if has(m) {
			return m, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	return "", ErrNoBinaries
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// takeLock holds an exclusive flock next to the data directory for as
// long as this process runs, so a crashed bounced's server can be told
// from one another bounced is using.
func (s *Server) takeLock() error {
	f, err := os.OpenFile(s.dataDir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("pgserver: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("%w: %s", ErrInUse, s.dataDir)
	}
	s.lock = f
	return nil
}

func (s *Server) releaseLock() {
	if s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

func (s *Server) initIfEmpty(ctx context.Context, ephemeral bool) error {
	if _, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	if err := s.chown(s.dataDir); err != nil {
		return err
	}
	if err := s.checkReachable(ctx); err != nil {
		return err
	}
	args := []string{"-D", s.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale"}
	if ephemeral {
		args = append(args, "--no-sync")
	}
	start := time.Now()
	if out, err := s.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("pgserver: initdb: %w: %s", err, lastLines(out, 5))
	}
	s.logger.Info("private postgres initialised", "data_dir", s.dataDir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// checkReachable fails early, with a useful message, when the postgres
// user cannot reach the data directory (a parent such as /root is 0700).
func (s *Server) checkReachable(ctx context.Context) error {
	if s.runAs == nil {
		return nil
	}
	cmd := exec.CommandContext(ctx, "runuser", "-u", s.runAs.Username, "--", "test", "-w", s.dataDir)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgserver: the postgres user cannot write %s (is a parent directory private?); set BOUNCED_DATA_DIR to a directory it can reach, such as /var/lib/bounced", s.dataDir)
	}
	return nil
}

// stopOrphan stops a server left running by a bounced that died without
// stopping it; holding the lock proves no live bounced owns it.
func (s *Server) stopOrphan(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.dataDir, "postmaster.pid")); err != nil {
		return nil
	}
	if _, err := s.run(ctx, "pg_ctl", "-D", s.dataDir, "status"); err != nil {
		return nil // stale pid file: postgres cleans it up itself
	}
	s.logger.Warn("stopping a private postgres left running by an earlier bounced", "data_dir", s.dataDir)
	if out, err := s.run(ctx, "pg_ctl", "-D", s.dataDir, "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pgserver: stop orphan: %w: %s", err, lastLines(out, 5))
	}
	return nil
}

func (s *Server) start(ctx context.Context, ephemeral bool) error {
	opts := []string{
		"-k", s.sockDir,
		"-p", strconv.Itoa(socketPort),
		"-c", "listen_addresses=",
		"-c", "max_connections=200",
	}
	if ephemeral {
		opts = append(opts, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, kv := range s.settings {
		opts = append(opts, "-c", kv)
	}
	logFile := filepath.Join(filepath.Dir(s.dataDir), filepath.Base(s.dataDir)+".log")
	if s.runAs != nil {
		// The log file must be writable by the server's user.
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err == nil {
			f.Close()
			_ = s.chown(logFile)
		}
	}
	start := time.Now()
	out, err := s.run(ctx, "pg_ctl", "-D", s.dataDir, "-l", logFile, "-w", "-t", "60",
		"-o", strings.Join(quoteAll(opts), " "), "start")
	if err != nil {
		return fmt.Errorf("pgserver: start: %w: %s (see %s)", err, lastLines(out, 5), logFile)
	}
	s.logger.Info("private postgres started", "data_dir", s.dataDir, "socket_dir", s.sockDir, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Server) createDatabase(ctx context.Context, name string) error {
	psql := filepath.Join(s.binDir, "psql")
	args := []string{"-h", s.sockDir, "-p", strconv.Itoa(socketPort), "-U", "postgres", "-d", "postgres", "-tAc"}
	out, err := exec.CommandContext(ctx, psql, append(args, "SELECT 1 FROM pg_database WHERE datname = '"+strings.ReplaceAll(name, "'", "''")+"'")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgserver: check database: %w: %s", err, out)
	}
	if strings.TrimSpace(string(out)) == "1" {
		return nil
	}
	out, err = exec.CommandContext(ctx, psql, append(args, `CREATE DATABASE "`+strings.ReplaceAll(name, `"`, `""`)+`"`)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pgserver: create database: %w: %s", err, out)
	}
	return nil
}

// run runs one of the server binaries, as the postgres user when root.
func (s *Server) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	bin := filepath.Join(s.binDir, name)
	var cmd *exec.Cmd
	if s.runAs != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.runAs.Username, "--", bin}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, bin, args...)
	}
	// pg_ctl start leaves the server running with our stdout open unless
	// output goes to a file; a buffer is fine because -l redirects it.
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.Dir = os.TempDir()
	err := cmd.Run()
	return buf.Bytes(), err
}

func (s *Server) chown(path string) error {
	if s.runAs == nil {
		return nil
	}
	uid, _ := strconv.Atoi(s.runAs.Uid)
	gid, _ := strconv.Atoi(s.runAs.Gid)
	if err := os.Chown(path, uid, gid); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

func quoteAll(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " '\"=") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return out
}

func lastLines(b []byte, n int) string {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// RunningURL returns a connection string for database name ("bounced"
// when empty) on the server another process runs in dataDir, read from its
// postmaster.pid (line 4 is the port, line 5 the socket directory), so a
// command can reach the private server of a running bounced.
func RunningURL(dataDir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return "", fmt.Errorf("pgserver: no running server in %s: %w", dataDir, err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 5 || strings.TrimSpace(lines[4]) == "" {
		return "", fmt.Errorf("pgserver: %s/postmaster.pid names no socket directory", dataDir)
	}
	if name == "" {
		name = "bounced"
	}
	q := url.Values{"host": {strings.TrimSpace(lines[4])}, "port": {strings.TrimSpace(lines[3])}, "sslmode": {"disable"}}
	return "postgres://postgres@/" + url.PathEscape(name) + "?" + q.Encode(), nil
}
