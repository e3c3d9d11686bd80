package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bounced/bounced/internal/dbtest"
	"github.com/bounced/bounced/internal/dsntest"
)

// maildirWith writes messages into a fresh Maildir's new/ and returns it.
func maildirWith(t *testing.T, msgs ...[]byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "Maildir")
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		if err := os.WriteFile(filepath.Join(dir, "new", fmt.Sprintf("1700000000.M%dP1.test", i)), m, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestIngestMaildirCommand(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	dir := maildirWith(t,
		dsntest.DSN("a", dsntest.Rcpt{Address: "a@example.com", Status: "5.1.1"}),
		dsntest.DSN("b", dsntest.Rcpt{Address: "b@example.com", Status: "5.1.1"}, dsntest.Rcpt{Address: "c@example.com", Status: "4.2.2", Action: "delayed"}),
		dsntest.DSN("d", dsntest.Rcpt{Address: "d@example.com", Status: "4.2.2", Action: "delayed"}),
		[]byte("not mail at all"),
	)
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"ingest", "maildir", "--progress", "always", dir}, env("BOUNCED_DATABASE_URL", url), nil, &out, &errOut)
	if err != nil {
		t.Fatalf("ingest maildir: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{
		"(maildir): 4 messages read, 4 stored, 0 already stored, 1 unparsed",
		"kind      messages", "bounce    2", "delay     1", "unparsed  1",
		"reason        recipients", "user_unknown  2", "delayed       2",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "100%") {
		t.Errorf("no finished progress bar on stderr:\n%s", errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), []string{"ingest", "maildir", dir}, env("BOUNCED_DATABASE_URL", url), nil, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "4 messages read, 0 stored, 4 already stored") {
		t.Errorf("second import:\n%s", out.String())
	}
	if strings.Contains(errOut.String(), "%") {
		t.Errorf("progress bar drawn on a non-terminal with --progress auto:\n%s", errOut.String())
	}
	// The Maildir is left as it was.
	if entries, _ := os.ReadDir(filepath.Join(dir, "new")); len(entries) != 4 {
		t.Errorf("new/ holds %d files after the import, want 4", len(entries))
	}
}

func TestIngestMboxCommand(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	var mbox bytes.Buffer
	for _, addr := range []string{"m1@example.com", "m2@example.com"} {
		fmt.Fprintf(&mbox, "From MAILER-DAEMON Sat Jan  6 10:00:00 2024\n%s\n", dsntest.DSN(addr, dsntest.Rcpt{Address: addr, Status: "5.1.1"}))
	}
	path := filepath.Join(t.TempDir(), "old-bounces")
	if err := os.WriteFile(path, mbox.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"ingest", "maildir", "--progress", "never", path}, env("BOUNCED_DATABASE_URL", url), nil, &out, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "(mbox): 2 messages read, 2 stored") {
		t.Errorf("summary:\n%s", out.String())
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM suppressions WHERE address IN ('m1@example.com', 'm2@example.com')`).Scan(&n); err != nil || n != 2 {
		t.Errorf("suppressions from the mbox = %d, %v; want 2", n, err)
	}
}

func TestIngestCommandErrors(t *testing.T) {
	t.Parallel()
	var ue usageError
	cases := []struct {
		name  string
		args  []string
		usage bool
	}{
		{"no subcommand", []string{"ingest"}, true},
		{"unknown subcommand", []string{"ingest", "pop3"}, true},
		{"no path", []string{"ingest", "maildir"}, true},
		{"two paths", []string{"ingest", "maildir", "a", "b"}, true},
		{"bad progress", []string{"ingest", "maildir", "--progress", "sometimes", "a"}, true},
		{"missing path", []string{"ingest", "maildir", filepath.Join(t.TempDir(), "nope")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), tc.args, env(), nil, &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || errors.As(err, &ue) != tc.usage {
				t.Errorf("run(%v) = %v, want a usage error: %t", tc.args, err, tc.usage)
			}
		})
	}
}

func TestServeWithMaildirAndLMTP(t *testing.T) {
	t.Parallel()
	swaksBin, err := exec.LookPath("swaks")
	if err != nil {
		t.Fatalf("swaks is not installed (Debian: apt-get install swaks): %v", err)
	}
	url := dbtest.URL(t)
	dir := maildirWith(t, dsntest.DSN("md", dsntest.Rcpt{Address: "maildir@example.com", Status: "5.1.1"}))
	sock := filepath.Join(t.TempDir(), "lmtp.sock")
	base, stop := startServe(t, env(
		"BOUNCED_DATABASE_URL", url,
		"BOUNCED_MAILDIR", dir,
		"BOUNCED_LMTP_SOCKET", sock,
		"BOUNCED_SMTP_DOMAINS", "bounce.example.net",
		"BOUNCED_VERP_PREFIX", "bounces",
	))
	eventually(t, "the Maildir message", func() bool { return getStatus(t, base+"/v1/suppressions/maildir@example.com") == 200 })
	// An undecodable bounce over LMTP: the VERP address names the recipient.
	out, err := exec.Command(swaksBin, "--socket", sock, "--protocol", "LMTP", "--from", "<>",
		"--to", "bounces+lmtp=example.com@bounce.example.net", "--data", "Subject: failure\n\nUser unknown: 550 5.1.1\n").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "250 2.0.0") {
		t.Fatalf("swaks over LMTP: %v\n%s", err, out)
	}
	if code := getStatus(t, base+"/v1/suppressions/lmtp@example.com"); code != 200 {
		t.Errorf("suppression from the LMTP bounce = %d, want 200", code)
	}
	if code := getStatus(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics bytes.Buffer
	metrics.ReadFrom(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`bounced_mailbox_messages_total{mailbox="lmtp",outcome="stored"} 1`,
		fmt.Sprintf(`bounced_mailbox_messages_total{mailbox=%q,outcome="stored"} 1`, dir),
		`bounced_mailbox_connection_state{mailbox="lmtp",state="listening"} 1`,
		`bounced_mailbox_last_success_timestamp_seconds{mailbox="lmtp"}`,
	} {
		if !strings.Contains(metrics.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LMTP socket left behind: %v", err)
	}
}

func TestServeReadyzReportsFailingIMAP(t *testing.T) {
	t.Parallel()
	url := dbtest.URL(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	base, stop := startServe(t, env(
		"BOUNCED_DATABASE_URL", url,
		"BOUNCED_IMAP_MAILBOXES", "down",
		"BOUNCED_IMAP_DOWN_HOST", "127.0.0.1",
		"BOUNCED_IMAP_DOWN_PORT", fmt.Sprint(port),
		"BOUNCED_IMAP_DOWN_TLS", "plain",
		"BOUNCED_IMAP_DOWN_USER", "bounces",
		"BOUNCED_IMAP_DOWN_PASSWORD", "secret",
		"BOUNCED_MAILBOX_UNHEALTHY_AFTER", "300ms",
	))
	eventually(t, "/readyz to report the mailbox", func() bool { return getStatus(t, base+"/readyz") == 503 })
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var holders int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM mailbox_leases WHERE mailbox = 'imap:down'`).Scan(&holders); err != nil || holders != 1 {
		t.Errorf("lease rows while running = %d, %v; want 1", holders, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM mailbox_leases`).Scan(&holders); err != nil || holders != 0 {
		t.Errorf("lease rows after shutdown = %d, %v; want 0 (released)", holders, err)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
