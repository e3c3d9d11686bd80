package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeBlock is one ```sh block of README.md and what the README test
// does with it, from the comment before it:
//
//	<!-- readme-test: skip (why) -->   not run
//	<!-- readme-test: server -->       restart serve with the settings it assigns
//
// A block of only BOUNCED_* assignments is settings for the server's
// environment: its names must be settings bounced knows. Any other block
// is pasted into the user's second terminal.
type readmeBlock struct {
	line int // of the opening fence
	kind string
	text string
}

func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	lines := strings.Split(string(raw), "\n")
	settingRE := regexp.MustCompile(`^[A-Z][A-Z0-9_]*=\S*(\s+#.*)?$`)
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```sh" {
			continue
		}
		b := readmeBlock{line: i + 1, kind: "run"}
		if i > 0 {
			if m := regexp.MustCompile(`^<!-- readme-test: (skip|server)\b.*-->$`).FindStringSubmatch(lines[i-1]); m != nil {
				b.kind = m[1]
			}
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		b.text = strings.Join(body, "\n") + "\n"
		if b.kind == "run" {
			settings := true
			for _, l := range body {
				if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !settingRE.MatchString(l) {
					settings = false
				}
			}
			if settings {
				b.kind = "settings"
			}
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// expectedStatuses reads, in order, the HTTP status each curl of a block
// should get: the number a line's trailing comment starts with ("# 401:
// revoked"), or any 2xx when the comment names none.
func expectedStatuses(block string) []int {
	var want []int
	curlRE := regexp.MustCompile(`(^|;\s*|\$\()curl\s`)
	for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		n := len(curlRE.FindAllString(line, -1))
		status := 0 // any 2xx
		if i := strings.LastIndex(line, "  # "); i >= 0 {
			if m := regexp.MustCompile(`^\s+# (\d{3})\b`).FindStringSubmatch(line[i:]); m != nil {
				status, _ = strconv.Atoi(m[1])
			}
		}
		for range n {
			want = append(want, status)
		}
	}
	return want
}

// TestReadmeWalkthrough pastes the README's shell blocks, in order, as a
// new user does after `make run`: into bash, in a checkout of its own
// where bin/bounced is this very program and bounced serves on a private
// PostgreSQL at the address the README names. Every block must succeed,
// every curl must get the status the README says (any 2xx where it says
// none), and every setting it shows must be one bounced knows.
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	for pkg, tool := range map[string]string{"bash": "bash", "curl": "curl", "openssl": "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (Debian: apt-get install %s): %v", tool, pkg, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// When root, the private server runs as the postgres user, which must reach it.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q \"$@\"\n", childEnv, self)
	if err := os.WriteFile(filepath.Join(dir, "bin", "bounced"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	listen := freePort(t)
	hookListen := freePort(t) // the webhook receiver's 127.0.0.1:8026
	serverEnv := []string{"BOUNCED_DATA_DIR", filepath.Join(dir, ".bounced"), "BOUNCED_LISTEN", listen}
	_, stop := startServeAs(t, env(serverEnv...), io.Discard)
	defer func() { _ = stop() }()
	// The user's shell: no DATABASE_URL or other settings of the developer's.
	shellEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LANG=C.UTF-8", "TERM=dumb"}
	known := knownSetting(t)

	blocks := readmeBlocks(t)
	if len(blocks) < 10 {
		t.Fatalf("found %d sh blocks in README.md; has its layout changed?", len(blocks))
	}
	ran := 0
	for _, b := range blocks {
		where := fmt.Sprintf("README.md:%d", b.line)
		switch b.kind {
		case "skip":
			continue
		case "settings":
			for _, l := range strings.Split(b.text, "\n") {
				name, _, ok := strings.Cut(strings.TrimSpace(l), "=")
				if ok && !strings.HasPrefix(name, "#") && !known(name) {
					t.Errorf("%s sets %s, which is no setting of bounced", where, name)
				}
			}
			continue
		case "server":
			// "NAME=value ... make run": bounced restarted with those settings.
			fields := strings.Fields(strings.TrimSpace(b.text))
			if len(fields) < 2 || strings.Join(fields[len(fields)-2:], " ") != "make run" {
				t.Fatalf("%s: a server block is NAME=value ... make run, not %q", where, b.text)
			}
			extra := append([]string(nil), serverEnv...)
			for _, f := range fields[:len(fields)-2] {
				name, value, ok := strings.Cut(f, "=")
				if !ok || !known(name) {
					t.Fatalf("%s: %q is not a setting of bounced", where, f)
				}
				extra = append(extra, name, value)
			}
			if err := stop(); err != nil {
				t.Fatalf("%s: stopping serve: %v", where, err)
			}
			_, stop = startServeAs(t, env(extra...), io.Discard)
			continue
		}
		ran++
		want := expectedStatuses(b.text)
		got, out := runReadmeBlock(t, dir, shellEnv, listen, hookListen, b.text)
		if len(got) != len(want) {
			t.Fatalf("%s: %d curl answers, want %d (one per curl):\n%s", where, len(got), len(want), out)
		}
		for i := range want {
			if want[i] == 0 && (got[i] < 200 || got[i] > 299) || want[i] != 0 && got[i] != want[i] {
				w := "2xx"
				if want[i] != 0 {
					w = strconv.Itoa(want[i])
				}
				t.Errorf("%s: curl %d of the block answered %d, the README says %s:\n%s", where, i+1, got[i], w, out)
			}
		}
	}
	if ran < 6 {
		t.Errorf("ran %d README blocks, want at least 6", ran)
	}
}

// runReadmeBlock runs one block in bash in dir with the variables earlier
// blocks set, its localhost:8025 pointing at listen, and returns the HTTP
// status of each curl in order and everything it printed.
func runReadmeBlock(t *testing.T, dir string, shellEnv []string, listen, hookListen, block string) ([]int, string) {
	t.Helper()
	block = strings.NewReplacer("localhost:8025", listen, "127.0.0.1:8025", listen, "127.0.0.1:8026", hookListen).Replace(block)
	script := `set -e -o pipefail
set -a   # what a block assigns stays for the next, as in one terminal
[ -f .readme-state ] && . ./.readme-state
curl() { command curl -sS -w '%{stderr}@@status %{http_code}@@\n' "$@"; }
` + block + `
export -p | grep -E '^declare -x [A-Za-z_][A-Za-z0-9_]*=' | grep -vE '^declare -x (PWD|OLDPWD|SHLVL|_|PATH|HOME|LANG|TERM)=' > .readme-state || true
`
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, shellEnv
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README block failed (%v):\n%s\n--- output:\n%s", err, block, out)
	}
	var statuses []int
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	re := regexp.MustCompile(`@@status (\d{3})@@`)
	for sc.Scan() {
		for _, m := range re.FindAllStringSubmatch(sc.Text(), -1) {
			n, _ := strconv.Atoi(m[1])
			statuses = append(statuses, n)
		}
	}
	return statuses, string(out)
}

// knownSetting returns whether a variable is one bounced reads: a setting
// (knownSettings), an IMAP mailbox's setting, or DATABASE_URL.
func knownSetting(t *testing.T) func(string) bool {
	t.Helper()
	names := knownSettings(t)
	imap := regexp.MustCompile(`^BOUNCED_IMAP_[A-Z0-9_]+_(HOST|PORT|TLS|TLS_CA_FILE|ALLOW_PLAIN|USER|PASSWORD|PASSWORD_FILE|FOLDER|ACTION|MOVE_TO|KEYWORD|IDLE|POLL_INTERVAL|IDLE_TIMEOUT|TENANT)$`)
	return func(name string) bool {
		return names[name] || name == "DATABASE_URL" || name == "BOUNCED_IMAP_MAILBOXES" || imap.MatchString(name)
	}
}
