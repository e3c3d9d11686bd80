package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
	"github.com/bounced/bounced/internal/store"
)

func TestMain(m *testing.M) {
	// The fault tests run this binary as bounced, to kill it with SIGKILL.
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	dbtest.Main(m)
}

// env builds a getenv that sees only the given variables, so tests never
// pick up the developer's DATABASE_URL.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// startServe runs `bounced serve` in the background and returns its base
// URL and a function that stops it and returns run's error.
func startServe(t *testing.T, getenv func(string) string, args ...string) (string, func() error) {
	t.Helper()
	return startServeTo(t, getenv, io.Discard, args...)
}

// startServeTo is startServe that also copies serve's standard output
// (its start banner) to out.
func startServeTo(t *testing.T, getenv func(string) string, out io.Writer, args ...string) (string, func() error) {
	t.Helper()
	return startServeAs(t, getenv, out, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
}

// startServeAs is startServeTo listening where the configuration says.
func startServeAs(t *testing.T, getenv func(string) string, out io.Writer, args ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), getenv, nil, pw, testWriter{t})
		pw.Close()
		done <- err
	}()
	lines := bufio.NewScanner(pr)
	var base string
	for lines.Scan() {
		fmt.Fprintln(out, lines.Text())
		if _, url, ok := strings.Cut(lines.Text(), "listening on "); ok {
			base = url
			break
		}
	}
	if base == "" {
		cancel()
		t.Fatalf("serve did not start: %v", <-done)
	}
	go func() {
		for lines.Scan() {
			fmt.Fprintln(out, lines.Text())
		}
		_, _ = io.Copy(io.Discard, pr) // a line too long for the scanner
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(time.Minute):
			t.Fatal("serve did not stop")
			return nil
		}
	}
	t.Cleanup(func() { _ = stop() })
	return base, stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func post(t *testing.T, url string, body []byte) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "message/rfc822", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeWithDatabaseURL(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, env("BOUNCED_DATABASE_URL", dbtest.URL(t)))
	raw := dsntest.DSN("e2e", dsntest.Rcpt{Address: "gone@example.com", Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 User unknown"})
	if code, body := post(t, base+"/v1/messages", raw); code != 201 || body["kind"] != "bounce" {
		t.Fatalf("POST = %d %v", code, body)
	}
	if code, _ := post(t, base+"/v1/messages", raw); code != 200 {
		t.Errorf("repost = %d, want 200", code)
	}
	if code := getStatus(t, base+"/v1/suppressions/gone@example.com"); code != 200 {
		t.Errorf("GET suppression = %d, want 200", code)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if code := getStatus(t, base+p); code != 200 {
			t.Errorf("GET %s = %d", p, code)
		}
	}
	if err := stop(); err != nil {
		t.Errorf("serve returned %v after SIGTERM-style cancel, want nil", err)
	}
}

// TestRawMessagesShareCommits: raw messages posted at once are committed
// together by the group committer, each answered only once its batch has
// committed (its suppression is there the moment the answer is).
func TestRawMessagesShareCommits(t *testing.T) {
	t.Parallel()
	base, stop := startServe(t, env("BOUNCED_DATABASE_URL", dbtest.URL(t), "BOUNCED_GROUP_COMMIT_WAIT", "50ms"))
	defer stop()
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			addr := fmt.Sprintf("shared%d@example.com", i)
			raw := dsntest.DSN(fmt.Sprintf("shared%d", i), dsntest.Rcpt{Address: addr, Status: "5.1.1", Diagnostic: "smtp; 550 5.1.1 User unknown"})
			if code, body := post(t, base+"/v1/messages", raw); code != 201 {
				t.Errorf("POST %d = %d %v", i, code, body)
				return
			}
			if code := getStatus(t, base+"/v1/suppressions/"+addr); code != 200 {
				t.Errorf("GET suppression of %s right after its 201 = %d, want 200", addr, code)
			}
		})
	}
	wg.Wait()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	var inputs, batches float64
	for _, line := range strings.Split(string(metrics), "\n") {
		fmt.Sscanf(line, "bounced_store_batch_inputs_sum %g", &inputs)
		fmt.Sscanf(line, "bounced_store_batch_inputs_count %g", &batches)
	}
	if inputs != n || batches < 1 || batches >= n {
		t.Errorf("group committer: %v inputs in %v batches; want the %d messages in fewer batches", inputs, batches, n)
	}
}

// TestServePrivatePostgres is the README's first command: no database
// configured, so bounced runs its own and stops it on shutdown.
func TestServePrivatePostgres(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// When root, the server runs as the postgres user, which must reach it.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	base, stop := startServe(t, env("BOUNCED_DATA_DIR", dir))
	t.Logf("serve with a fresh private postgres ready in %v", time.Since(start))
	raw := dsntest.DSN("private", dsntest.Rcpt{Address: "x@example.com", Status: "5.1.1"})
	if code, _ := post(t, base+"/v1/messages", raw); code != 201 {
		t.Fatalf("POST = %d", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("private postgres still running after shutdown (postmaster.pid: %v)", err)
	}
	// A second start reuses the data: the suppression survived.
	start = time.Now()
	base, stop = startServe(t, env("BOUNCED_DATA_DIR", dir))
	t.Logf("serve with an existing private postgres ready in %v", time.Since(start))
	if code := getStatus(t, base+"/v1/suppressions/x@example.com"); code != 200 {
		t.Errorf("after restart GET suppression = %d, want 200", code)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
}

func TestMigrateCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := dbtest.URL(t)
	// A fresh database without the migrations.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"migrate"}, env("DATABASE_URL", url), nil, &out, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "applied 00001_init.sql") {
		t.Errorf("migrate output %q lacks the applied migration", out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"migrate"}, env("DATABASE_URL", url), nil, &out, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "up to date") {
		t.Errorf("second migrate output %q, want up to date", out.String())
	}
	// serve refuses a schema from the future.
	if _, err := conn.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, store.KnownSchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	err = run(ctx, []string{"serve", "--listen", "127.0.0.1:0"}, env("DATABASE_URL", url), nil, io.Discard, testWriter{t})
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("serve on a newer schema = %v, want ErrSchemaTooNew", err)
	}
}

func TestParseCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.eml")
	os.WriteFile(good, dsntest.DSN("p", dsntest.Rcpt{Address: "a@example.com", Status: "5.1.1"}), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.eml"), []byte{}, 0o644)
	var out bytes.Buffer
	stdin := bytes.NewReader(dsntest.DSN("stdin", dsntest.Rcpt{Address: "b@example.com", Status: "4.2.2", Action: "delayed"}))
	err := run(context.Background(), []string{"parse", dir, "-", filepath.Join(dir, "missing.eml")}, env(), stdin, &out, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("parse printed %d lines, want 4 (one per input):\n%s", len(lines), out.String())
	}
	var got []struct {
		File       string
		Kind       string
		Error      string
		Recipients []struct{ Address, Status, Reason, Class string }
	}
	for _, l := range lines {
		var v struct {
			File       string
			Kind       string
			Error      string
			Recipients []struct{ Address, Status, Reason, Class string }
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		got = append(got, v)
	}
	byName := map[string]int{}
	for i, g := range got {
		byName[filepath.Base(g.File)] = i
	}
	if g := got[byName["good.eml"]]; g.Kind != "bounce" || len(g.Recipients) != 1 || g.Recipients[0].Reason != "user_unknown" || g.Error != "" {
		t.Errorf("good.eml = %+v", g)
	}
	if g := got[byName["bad.eml"]]; g.Error == "" {
		t.Errorf("bad.eml = %+v, want an error", g)
	}
	if g := got[byName["-"]]; g.Kind != "delay" {
		t.Errorf("stdin = %+v, want delay", g)
	}
	if g := got[byName["missing.eml"]]; !strings.Contains(g.Error, "no such file") {
		t.Errorf("missing.eml = %+v, want a read error", g)
	}
}

func TestExplainCommand(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"explain", "5.1.3", "503"}, env(), nil, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bad_syntax", "suppress: true", "Sintaxis", "Bad sequence of commands", "class sender, suppress: false"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("explain output lacks %q:\n%s", want, out.String())
		}
	}
	// A bare permanent code does not suppress, and explain says why.
	for _, code := range []string{"550", "5.0.0", "554"} {
		out.Reset()
		if err := run(context.Background(), []string{"explain", code}, env(), nil, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "suppress: false") || !strings.Contains(out.String(), "not enough to suppress") ||
			!strings.Contains(out.String(), "no basta para suprimir") {
			t.Errorf("explain %s does not say why a permanent failure does not suppress:\n%s", code, out.String())
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"explain", "5.1.1", "5.5.1", "4.2.2"}, env(), nil, &out, io.Discard); err != nil || strings.Contains(out.String(), "why:") {
		t.Errorf("explain 5.1.1 5.5.1 4.2.2 = %v, want no why (suppressing, sender-side, transient):\n%s", err, out.String())
	}
	err := run(context.Background(), []string{"explain", "banana"}, env(), nil, &out, io.Discard)
	var ue usageError
	if !errors.As(err, &ue) {
		t.Errorf("explain banana = %v, want a usage error", err)
	}
	if err := run(context.Background(), []string{"frobnicate"}, env(), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
		t.Errorf("unknown command = %v, want a usage error", err)
	}
	if err := run(context.Background(), []string{"serve", "--max-body-bytes", "ten"}, env(), nil, io.Discard, io.Discard); !errors.As(err, &ue) {
		t.Errorf("bad flag = %v, want a usage error", err)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	base, _ := startServe(t, env("BOUNCED_DATABASE_URL", dbtest.URL(t)))
	addr := strings.TrimPrefix(base, "http://")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "--addr", addr}, env(), nil, &out, io.Discard); err != nil || out.String() != "ok\n" {
		t.Errorf("healthcheck against a running bounced = %v, %q", err, out.String())
	}
	if err := run(context.Background(), []string{"healthcheck"}, env("BOUNCED_LISTEN", "127.0.0.1:1"), nil, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck against a closed port succeeded")
	}
}

// TestCommandsBesideServe runs what an operator runs while `make run` is
// going: every command that needs the database uses the private
// PostgreSQL the running serve started, and check-config accepts the
// listen address that serve holds.
func TestCommandsBesideServe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// When root, the server runs as the postgres user, which must reach it.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	listen := freePort(t)
	getenv := env("BOUNCED_DATA_DIR", dir, "BOUNCED_LISTEN", listen)
	base, stop := startServeAs(t, getenv, io.Discard)
	defer stop()
	cli := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), args, getenv, nil, &out, testWriter{t}); err != nil {
			t.Fatalf("bounced %s beside serve = %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	token := strings.TrimSpace(cli("apikey", "create", "--name", "ops", "--scope", "admin", "--token-only"))
	if strings.ContainsAny(token, " \n") || len(token) < 20 {
		t.Fatalf("apikey create --token-only printed %q, want the token alone", token)
	}
	if out := cli("migrate"); !strings.Contains(out, "schema is up to date") {
		t.Errorf("migrate beside serve = %q", out)
	}
	md := maildirWith(t, dsntest.DSN("beside", dsntest.Rcpt{Address: "beside@example.com", Status: "5.1.1"}))
	if out := cli("ingest", "maildir", "--progress", "never", md); !strings.Contains(out, "1 stored") {
		t.Errorf("ingest maildir beside serve = %q", out)
	}
	if out := cli("stats", "--since", "48h"); !strings.Contains(out, "bounce rate") {
		t.Errorf("stats beside serve = %q", out)
	}
	out := cli("check-config")
	if !strings.Contains(out, "ok    http listen "+listen+": in use by a running bounced") || !strings.Contains(out, "no problems found") {
		t.Errorf("check-config beside serve:\n%s", out)
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/suppressions/beside@example.com", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the bounce ingested beside serve: GET suppression = %d, want 200", resp.StatusCode)
	}
}
