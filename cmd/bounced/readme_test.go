package main

import (
	"bytes"
	"net/http"
	"os"
	"regexp"
	"testing"

	"github.com/bounced/bounced/internal/dbtest"
)

// TestReadmeExample posts the bounce the README builds with its heredoc,
// as its curl command does, so the README cannot drift from the service.
func TestReadmeExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)cat > bounce\.eml <<'MAIL'\n(.*?\n)MAIL\n`).FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no bounce.eml heredoc")
	}
	if !bytes.Contains(readme, []byte(`curl --data-binary @bounce.eml -H 'Content-Type: message/rfc822' localhost:8025/v1/messages`)) {
		t.Fatal("README's curl command changed; update this test with it")
	}
	base, stop := startServe(t, env("BOUNCED_DATABASE_URL", dbtest.URL(t)))
	defer stop()
	if code, body := post(t, base+"/v1/messages", m[1]); code != http.StatusCreated || body["kind"] != "bounce" {
		t.Fatalf("POST README bounce = %d %v, want 201 bounce", code, body)
	}
	if code, _ := post(t, base+"/v1/messages", m[1]); code != http.StatusOK {
		t.Errorf("second POST = %d, want 200", code)
	}
	if code := getStatus(t, base+"/v1/suppressions/user@example.com"); code != http.StatusOK {
		t.Errorf("GET /v1/suppressions/user@example.com = %d, want 200", code)
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"/v1/suppressions/user@example.com?note=fixed", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("DELETE = %d, want 204", resp.StatusCode)
	}
	if code := getStatus(t, base+"/v1/suppressions/user@example.com"); code != http.StatusNotFound {
		t.Errorf("GET after DELETE = %d, want 404", code)
	}
}

// TestReadmeNamesEveryCommand keeps the README's "Command line" section in
// step with the usage text: every command and every flag the usage names.
func TestReadmeNamesEveryCommand(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	commands := regexp.MustCompile(`(?m)^  ([a-z][a-z-]+) `).FindAllStringSubmatch(usage, -1)
	if len(commands) < 10 {
		t.Fatalf("found %d commands in the usage text; has its layout changed?", len(commands))
	}
	for _, c := range commands {
		if !bytes.Contains(readme, []byte("bounced "+c[1])) {
			t.Errorf("README.md does not show bounced %s", c[1])
		}
	}
	for _, f := range regexp.MustCompile(`--[a-z][a-z-]+`).FindAllString(usage, -1) {
		if !bytes.Contains(readme, []byte(f)) {
			t.Errorf("README.md does not mention %s", f)
		}
	}
}
